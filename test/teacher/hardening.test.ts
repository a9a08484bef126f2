// The teacher host's defences, on real host processes: the token (401 without it, compared in
// constant time, in a configurable header), the body limit enforced while the body arrives (a 100 MB
// upload is refused at once and the host's memory stays flat), and the concurrency bound (a flood
// gets 503 with Retry-After, and the host keeps serving).
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processMemory as memory } from "../../scripts/stack.ts";
import { type TeacherProcess, launchTeacher } from "../../teacher/launch.ts";
import { newTeacherToken, writeTeacherModels } from "../src/setup/teacher.ts";

let dir: string;
let manifestPath: string;
const token = newTeacherToken();
const hosts: TeacherProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-hardening-"));
  ({ manifestPath } = await writeTeacherModels(dir));
});
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function start(
  args: string[] = [],
  env: Record<string, string> = { TEACHER_TOKEN: token },
  log?: (line: string) => void,
): Promise<TeacherProcess> {
  const h = await launchTeacher({
    args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu", ...args],
    env,
    ...(log ? { log } : {}),
  });
  hosts.push(h);
  return h;
}

async function refusal(args: string[], env: Record<string, string>): Promise<string> {
  try {
    const h = await start(args, env);
    await h.stop();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`the host started with ${args.join(" ")}`);
}

const inferBody = JSON.stringify({
  inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: new Array(784).fill(0.25) }],
});
const infer = (url: string, headers: Record<string, string>) =>
  fetch(`${url}/v2/models/teacher28/infer`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: inferBody,
  });

/**
 * Uploads `total` bytes of zeros in 1 MB writes, with a Content-Length or chunked, until the host
 * answers or drops the connection; resolves with the status (if any) and the bytes the client
 * managed to write.
 */
function upload(
  url: string,
  total: number,
  chunked: boolean,
): Promise<{ status: number | undefined; body: string; written: number; ms: number }> {
  const started = performance.now();
  const { hostname, port } = new URL(url);
  const chunk = Buffer.alloc(1 << 20);
  return new Promise((resolve) => {
    let written = 0;
    let done = false;
    const finish = (status: number | undefined, body: string) => {
      if (done) return;
      done = true;
      resolve({ status, body, written, ms: performance.now() - started });
    };
    const req = request({
      hostname,
      port,
      method: "POST",
      path: "/v2/models/teacher28/infer",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${token}`,
        ...(chunked ? {} : { "Content-Length": String(total) }),
      },
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => finish(res.statusCode, body));
      res.on("error", () => finish(res.statusCode, body));
    });
    req.on("error", () => finish(undefined, ""));
    const pump = () => {
      while (!done && written < total) {
        written += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (!done) req.end();
    };
    pump();
  });
}

describe("the teacher token", () => {
  let host: TeacherProcess;
  beforeAll(async () => {
    host = await start();
  });

  it("answers 401 without it or with a wrong one, and 200 with it", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: `Bearer ${newTeacherToken()}` },
      { Authorization: `Bearer ${token.slice(0, -1)}` },
    ];
    for (const headers of attempts) {
      const res = await infer(host.url, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer /);
      const body = (await res.json()) as Record<string, string>;
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).not.toContain(token);
    }
    expect((await fetch(`${host.url}/v2/models/teacher28`)).status).toBe(401);
    expect((await infer(host.url, { Authorization: `Bearer ${token}` })).status).toBe(200);
  });

  it("leaves the health probes open", async () => {
    expect((await fetch(`${host.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${host.url}/v2/health/ready`)).status).toBe(200);
  });

  it("can be carried in another header, for a gateway in front of Triton", async () => {
    const h = await start(["--auth-header", "X-Teacher-Token"]);
    expect((await infer(h.url, { "X-Teacher-Token": token })).status).toBe(200);
    expect((await infer(h.url, { Authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await infer(h.url, { "X-Teacher-Token": `Bearer ${token}` })).status).toBe(400);
  });

  it("is required to start, unless --no-auth says otherwise (and the host says so)", async () => {
    expect(await refusal([], {})).toMatch(/TEACHER_TOKEN is not set/);
    expect(await refusal([], { TEACHER_TOKEN: "short" })).toMatch(/TEACHER_TOKEN must be at least 22 characters/);
    expect(await refusal(["--no-auth"], { TEACHER_TOKEN: token })).toMatch(/--no-auth and TEACHER_TOKEN contradict/);
    expect(await refusal(["--auth-header", "X Bad"], { TEACHER_TOKEN: token })).toMatch(
      /--auth-header must be an HTTP header name/,
    );
    const lines: string[] = [];
    const open = await start(["--no-auth"], {}, (l) => lines.push(l));
    expect(lines).toContain("teacher: AUTHENTICATION OFF (--no-auth): anyone who reaches this port can run the model");
    expect((await infer(open.url, {})).status).toBe(200);
  });
});

describe("the body limit", () => {
  // A 100 MB body, with its Content-Length (refused before reading) or chunked (refused at the limit):
  // answered 413 within seconds, the host's peak memory barely moved, and the host still serving.
  for (const chunked of [false, true]) {
    it(`refuses a 100 MB body ${chunked ? "sent chunked, at the limit" : "by its Content-Length, before reading it"}, with the host's memory flat`, async () => {
      const h = await start(["--max-body-bytes", "1048576"]);
      const before = memory(h.child.pid!, true);
      const r = await upload(h.url, 100 << 20, chunked);
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body)).toEqual({ error: "the body is over the limit of 1048576 bytes" });
      expect(r.ms).toBeLessThan(5_000);
      expect(memory(h.child.pid!).peak - before.rss).toBeLessThan(30 << 20);
      expect((await infer(h.url, { Authorization: `Bearer ${token}` })).status).toBe(200);
    });
  }
});

describe("a flood", () => {
  it("gets 503 with Retry-After beyond the running and waiting requests, and the host keeps serving", async () => {
    const h = await start(["--max-concurrent", "1", "--max-queue", "2", "--fault-delay-ms", "300"]);
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => infer(h.url, { Authorization: `Bearer ${token}` })),
    );
    const ok = responses.filter((r) => r.status === 200);
    const busy = responses.filter((r) => r.status === 503);
    expect(ok.length + busy.length).toBe(30);
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(busy.length).toBeGreaterThanOrEqual(20);
    for (const r of busy) {
      expect(r.headers.get("Retry-After")).toBe("1");
      expect(((await r.json()) as { error: string }).error).toMatch(/^the teacher host is busy/);
    }
    expect(h.child.exitCode).toBeNull();
    expect((await fetch(`${h.url}/v2/health/ready`)).status).toBe(200);
    expect((await infer(h.url, { Authorization: `Bearer ${token}` })).status).toBe(200);
  });
});

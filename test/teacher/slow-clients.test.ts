// Slow clients against a real teacher host: ten connections that trickle their bodies hold no
// concurrency slot (the body is read before one is taken), so a normal request is answered in its
// own time; Node's timers then cut the slow ones off (408), and a client that never finishes its
// headers is cut off too.
import { mkdtempSync, rmSync } from "node:fs";
import { type ClientRequest, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TeacherProcess, launchTeacher } from "../../teacher/launch.ts";
import { newTeacherToken, writeTeacherModels } from "../src/setup/teacher.ts";

let dir: string;
let manifestPath: string;
const token = newTeacherToken();
const hosts: TeacherProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-slow-"));
  ({ manifestPath } = await writeTeacherModels(dir));
});
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function start(args: string[]): Promise<TeacherProcess> {
  const h = await launchTeacher({
    args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu", ...args],
    env: { TEACHER_TOKEN: token },
  });
  hosts.push(h);
  return h;
}

const body = JSON.stringify({
  inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: new Array(784).fill(0.25) }],
});

/** One normal inference request; resolves with its status and how long it took. */
async function timedInfer(url: string): Promise<{ status: number; ms: number; at: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v2/models/teacher28/infer`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body,
  });
  await res.arrayBuffer();
  const at = performance.now();
  return { status: res.status, ms: at - started, at };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface SlowUpload {
  req: ClientRequest;
  /** Resolves with the status the host answered (408 once it gives up), or undefined if it only closed. */
  answered: Promise<{ status: number | undefined; at: number }>;
  stop(): void;
}

/** A request that declares the whole body and sends it a byte every 100 ms. */
function slowUpload(url: string): SlowUpload {
  const { hostname, port } = new URL(url);
  const req = request({
    hostname,
    port,
    method: "POST",
    path: "/v2/models/teacher28/infer",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${token}`,
      "Content-Length": String(body.length),
    },
  });
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < body.length - 1) req.write(body[sent++]!);
  }, 100);
  const stop = () => {
    clearInterval(timer);
    req.destroy();
  };
  const answered = new Promise<{ status: number | undefined; at: number }>((resolve) => {
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode, at: performance.now() });
    });
    req.on("error", () => resolve({ status: undefined, at: performance.now() }));
    req.on("close", () => resolve({ status: undefined, at: performance.now() }));
  });
  void answered.finally(() => clearInterval(timer));
  req.flushHeaders();
  return { req, answered, stop };
}

describe("slow clients", () => {
  it("ten slow-body connections do not delay a normal request, and are cut off after the request timeout", async () => {
    // Eight slots, as the host had when ten slow bodies starved it: each used to take a slot first.
    const h = await start(["--max-concurrent", "8", "--request-timeout-ms", "6000"]);
    await timedInfer(h.url); // the session's first run is slower; not what is compared
    const unloaded: number[] = [];
    for (let i = 0; i < 5; i++) unloaded.push((await timedInfer(h.url)).ms);

    const slow = Array.from({ length: 10 }, () => slowUpload(h.url));
    let slowDone = 0;
    for (const s of slow) void s.answered.then(() => slowDone++);
    try {
      await new Promise((r) => setTimeout(r, 500)); // all ten are in, each part-way through its body
      expect(slowDone).toBe(0);
      const loaded: { status: number; ms: number; at: number }[] = [];
      for (let i = 0; i < 5; i++) loaded.push(await timedInfer(h.url));
      // Answered while every slow request was still sending, and in its own time.
      expect(loaded.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(slowDone).toBe(0);
      expect(median(loaded.map((r) => r.ms))).toBeLessThan(median(unloaded) + 100);

      // The slow ones are answered 408 once the whole request has taken longer than allowed.
      const ends = await Promise.all(slow.map((s) => s.answered));
      const lastNormal = Math.max(...loaded.map((r) => r.at));
      for (const end of ends) {
        expect(end.status).toBe(408);
        expect(end.at).toBeGreaterThan(lastNormal);
      }
    } finally {
      slow.forEach((s) => {
        s.stop();
      });
    }
    expect((await timedInfer(h.url)).status).toBe(200);
  }, 30_000);

  it("a client that never finishes its headers is answered 408 after the headers timeout", async () => {
    const h = await start(["--headers-timeout-ms", "1000"]);
    const { hostname, port } = new URL(h.url);
    const started = performance.now();
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write(`POST /v2/models/teacher28/infer HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: app`),
      );
      let got = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (got += d));
      socket.on("close", () => resolve(got));
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

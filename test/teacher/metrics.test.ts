// GET /metrics of a real teacher host, read as Prometheus text by prom2javascript (not prom-client,
// which writes it): behind the token, requests and failures by endpoint and status,
// latency, batch sizes, and the requests waiting for a slot or a batch while they wait.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "fast-png";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TeacherProcess, launchTeacher } from "../../teacher/launch.ts";
import { newTeacherToken, writeTeacherModels } from "../src/setup/teacher.ts";
import { Scrape } from "./scrape.ts";

let dir: string;
let manifestPath: string;
const token = newTeacherToken();
const auth = { Authorization: `Bearer ${token}` };
const hosts: TeacherProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-metrics-"));
  ({ manifestPath } = await writeTeacherModels(dir));
});
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function start(args: string[] = []): Promise<TeacherProcess> {
  const h = await launchTeacher({
    args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu", ...args],
    env: { TEACHER_TOKEN: token },
  });
  hosts.push(h);
  return h;
}

const good = JSON.stringify({
  inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: new Array(784).fill(0.5) }],
});
const infer = (url: string, body: string, headers: Record<string, string> = auth) =>
  fetch(`${url}/v2/models/teacher28/infer`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body,
  });

describe("GET /metrics", () => {
  it("needs the token, like everything but the health probes", async () => {
    const h = await start();
    const res = await fetch(`${h.url}/metrics`);
    expect(res.status).toBe(401);
    expect(Object.keys((await res.json()) as object)).toEqual(["error"]);
  });

  it("counts requests and failures by endpoint and status, times them, and records batch sizes", async () => {
    const h = await start();
    expect((await infer(h.url, good)).status).toBe(200);
    expect((await infer(h.url, good)).status).toBe(200);
    expect((await infer(h.url, "{not json")).status).toBe(400);
    expect((await infer(h.url, good, {})).status).toBe(401);
    expect((await fetch(`${h.url}/v2/health/ready`)).status).toBe(200);

    const res = await fetch(`${h.url}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = await Scrape.parse(await res.text());

    expect(m.type("teacher_requests_total")).toBe("counter");
    expect(m.value("teacher_requests_total", { endpoint: "infer", code: "200" })).toBe(2);
    expect(m.value("teacher_requests_total", { endpoint: "infer", code: "400" })).toBe(1);
    expect(m.value("teacher_requests_total", { endpoint: "infer", code: "401" })).toBe(1);
    expect(m.value("teacher_requests_total", { endpoint: "health", code: "200" })).toBe(1);
    expect(m.value("teacher_request_failures_total", { endpoint: "infer", code: "400" })).toBe(1);
    expect(m.value("teacher_request_failures_total", { endpoint: "infer", code: "401" })).toBe(1);
    expect(m.sample("teacher_request_failures_total", { code: "200" })).toBeUndefined();

    const latency = m.histogram("teacher_request_duration_seconds", { endpoint: "infer" });
    expect(m.type("teacher_request_duration_seconds")).toBe("histogram");
    expect(latency.count).toBe(4);
    expect(latency.sum).toBeGreaterThan(0);
    expect(latency.buckets["+Inf"]).toBe(4);

    // Two requests, one after the other: two runs of one image each.
    const batches = m.histogram("teacher_batch_size");
    expect(batches.count).toBe(2);
    expect(batches.sum).toBe(2);
    expect(batches.buckets["1"]).toBe(2);
    expect(m.histogram("teacher_inference_duration_seconds").count).toBe(2);

    expect(m.type("teacher_queue_depth")).toBe("gauge");
    expect(m.value("teacher_queue_depth", { stage: "slot" })).toBe(0);
    expect(m.value("teacher_queue_depth", { stage: "batch" })).toBe(0);
    expect(m.value("process_resident_memory_bytes")).toBeGreaterThan(10 << 20);
  });

  it("shows requests waiting for a slot while they wait", async () => {
    const h = await start(["--max-concurrent", "1", "--fault-delay-ms", "1500"]);
    const pending = Array.from({ length: 3 }, () => infer(h.url, good));
    await new Promise((r) => setTimeout(r, 700));
    expect((await Scrape.of(h.url, token)).value("teacher_queue_depth", { stage: "slot" })).toBe(2);
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await Scrape.of(h.url, token)).value("teacher_queue_depth", { stage: "slot" })).toBe(0);
  });

  it("shows a request waiting for a batch while another is on its way", async () => {
    // A delayed inference holds a slot without reaching the batcher (fault injection delays only
    // /infer), so a classification that arrives meanwhile waits out the window for it.
    const h = await start(["--max-batch", "8", "--batch-window-ms", "1000", "--fault-delay-ms", "1500"]);
    const delayed = infer(h.url, good);
    await new Promise((r) => setTimeout(r, 200));
    const png = encode({ width: 28, height: 28, data: new Uint8Array(784).fill(128), channels: 1, depth: 8 });
    const classified = fetch(`${h.url}/v1/classify`, {
      method: "POST",
      headers: { "Content-Type": "image/png", ...auth },
      body: Buffer.from(png),
    });
    await new Promise((r) => setTimeout(r, 500));
    const during = await Scrape.of(h.url, token);
    expect(during.value("teacher_queue_depth", { stage: "batch" })).toBe(1);
    expect(during.histogram("teacher_batch_size").count).toBe(0);
    expect([(await classified).status, (await delayed).status]).toEqual([200, 200]);
    const m = await Scrape.of(h.url, token);
    expect(m.value("teacher_queue_depth", { stage: "batch" })).toBe(0);
    expect(m.histogram("teacher_batch_size").count).toBe(2);
  });
});

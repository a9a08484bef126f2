// The README's API examples, run as written from the repository root against the system `npm start`
// brings up (scripts/start.ts: the teacher host and `wrangler dev` on the shipped models, A/B routing
// on, secrets in .dev.vars). The shell block under "## Edge API" runs in bash with real curl; the one
// thing added is where curl connects: `localhost:8787` is sent to the free port this test started
// the Worker on (curl's --connect-to), so a developer's own `npm start` may keep running. Each curl
// must answer 2xx with the shape docs/api.md documents.
//
// start.ts writes .dev.vars when it is missing (as `npm start` does); the test then deletes it again.
// Skips, saying why, where curl is missing.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const README = "README.md";
const DEV_VARS = ".dev.vars";
const START_TIMEOUT_MS = 240_000;

const curlPath = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v curl"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
})();
if (!curlPath) console.warn("README examples test skipped: curl is not installed (apt-get install curl)");

/** The first ```sh block after a heading, as lines; throws naming what is missing. */
function shellBlock(markdown: string, heading: string): string[] {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`${README}: no heading "${heading}"`);
  const m = /\n```sh\n([\s\S]*?)\n```/.exec(markdown.slice(at));
  if (!m) throw new Error(`${README}: no \`\`\`sh block under "${heading}"`);
  return m[1]!.split("\n");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Answer {
  command: string;
  status: number;
  body: string;
}

const MARK = "@@readme-test status=";

/** Runs the block in bash from the repository root; one answer per curl command, in order. */
function runBlock(lines: string[], workerPort: number): Answer[] {
  const commands = lines.filter((l) => l.trimStart().startsWith("curl "));
  // A shell function named curl: the README's commands run unchanged, connecting to this test's port
  // and reporting each status after the body.
  const wrapper = `curl() { command curl --connect-to localhost:8787:127.0.0.1:${workerPort} -w '\\n${MARK}%{http_code}\\n' "$@"; }`;
  const out = execFileSync("bash", ["-c", [wrapper, ...lines].join("\n")], {
    encoding: "utf8",
    timeout: 60_000,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const parts = out.split(new RegExp(`\\n?${MARK.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\d+)\\n`));
  const answers: Answer[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2)
    answers.push({ command: commands[answers.length] ?? "?", body: parts[i]!, status: Number(parts[i + 1]) });
  expect(answers.length, `one answer per curl command; output:\n${out}`).toBe(commands.length);
  return answers;
}

describe.skipIf(!curlPath)("the README's API examples", () => {
  const lines = shellBlock(readFileSync(README, "utf8"), "## Edge API");
  const manifest = JSON.parse(readFileSync("models/manifest.json", "utf8")) as {
    defaultStudent: string;
    models: { name: string }[];
  };
  let start: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let workerPort = 0;
  let wroteDevVars = false;
  const log: string[] = [];

  beforeAll(async () => {
    wroteDevVars = !existsSync(DEV_VARS);
    workerPort = await freePort();
    const teacherPort = await freePort();
    // Node itself (not npm or tsx's wrapper), so that SIGTERM reaches start.ts, which stops both.
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
      env: { ...process.env, WORKER_PORT: String(workerPort), TEACHER_PORT: String(teacherPort), NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    start = child;
    exited = new Promise((r) => child.once("exit", () => r()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`npm start did not come up within ${START_TIMEOUT_MS / 1000} s:\n${log.slice(-30).join("")}`),
          ),
        START_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer) => {
        log.push(chunk.toString());
        if (log.join("").includes("narrowdeep is running")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", (chunk: Buffer) => log.push(chunk.toString()));
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited with code ${code}:\n${log.slice(-30).join("")}`));
      });
    });
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    if (start && start.exitCode === null && start.signalCode === null) {
      start.kill("SIGTERM");
      const timer = setTimeout(() => start?.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (wroteDevVars) rmSync(DEV_VARS, { force: true });
  }, 30_000);

  it("finds the three documented calls in the README's shell block", () => {
    const commands = lines.filter((l) => l.trimStart().startsWith("curl "));
    expect(commands.map((c) => /localhost:8787(\/[^'\s?]*)/.exec(c)?.[1])).toEqual([
      "/v2/models/narrow-deep",
      "/v1/classify",
      "/v1/report",
    ]);
    // The image it sends exists, relative to the repository root.
    for (const c of commands)
      for (const m of c.matchAll(/@(\S+)/g)) expect(existsSync(m[1]!), `${m[1]} (in: ${c})`).toBe(true);
  });

  it("answers each as docs/api.md documents", () => {
    const [metadata, classify, report] = runBlock(lines, workerPort);
    for (const a of [metadata!, classify!, report!])
      expect(a.status, `${a.command}\n-> ${a.status} ${a.body.slice(0, 300)}`).toBeGreaterThanOrEqual(200);
    for (const a of [metadata!, classify!, report!])
      expect(a.status, `${a.command}\n-> ${a.status} ${a.body.slice(0, 300)}`).toBeLessThan(300);

    // GET /v2/models/{name}: {name, versions, platform, inputs, outputs}.
    const meta = JSON.parse(metadata!.body) as {
      name: string;
      versions: string[];
      platform: string;
      inputs: { name: string; datatype: string; shape: number[] }[];
      outputs: { name: string }[];
    };
    expect(meta.name).toBe("narrow-deep");
    expect(meta.platform).toBe("onnxruntime_onnx");
    expect(meta.versions.length).toBeGreaterThan(0);
    expect(meta.inputs[0]).toMatchObject({ name: "input", datatype: "FP32", shape: [-1, 1, 28, 28] });
    expect(meta.outputs.map((o) => o.name).sort()).toEqual(["logits", "probabilities"]);

    // POST /v1/classify?k=3: the model that answered (the split may send it to the teacher), the image, the top 3.
    const c = JSON.parse(classify!.body) as {
      model: { name: string; version: string };
      image: { format: string; width: number; height: number };
      predictions: { label: string; index: number; probability: number }[];
    };
    expect(manifest.models.map((m) => m.name)).toContain(c.model.name);
    expect(typeof c.model.version).toBe("string");
    expect(c.image).toEqual({ format: "png", width: 28, height: 28 });
    expect(c.predictions).toHaveLength(3);
    for (const p of c.predictions) {
      expect(typeof p.label).toBe("string");
      expect(Number.isInteger(p.index)).toBe(true);
      expect(p.probability).toBeGreaterThanOrEqual(0);
      expect(p.probability).toBeLessThanOrEqual(1);
    }
    const probabilities = c.predictions.map((p) => p.probability);
    expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a));

    // GET /v1/report (the admin token from .dev.vars): the window, totals and one row per arm, model, version and reason.
    const r = JSON.parse(report!.body) as {
      since: string | null;
      until: string;
      requests: number;
      fallbacks: number;
      writes: object;
      rows: unknown[];
    };
    expect(Number.isNaN(Date.parse(r.until))).toBe(false);
    expect(Number.isInteger(r.requests)).toBe(true);
    expect(Number.isInteger(r.fallbacks)).toBe(true);
    expect(r.writes).toEqual(expect.objectContaining({ transactions: expect.any(Number), rows: expect.any(Number) }));
    expect(Array.isArray(r.rows)).toBe(true);
  });
});

// The Worker under Miniflare's own HTTP server, with no `wrangler dev` proxy in front of it: the bundle
// `wrangler deploy --dry-run` writes, wrangler.toml's bindings (vars, D1, the measurements queue and
// its consumer, the rate limiter) as wrangler reads them, a local D1 with migrations/ applied, and the
// teacher host on loopback. wrangler's dev proxy answers some requests under load with its own 503
// "Your worker restarted mid-request" (workers-sdk #14641); this server does not have that proxy.
// V8's inspector is on, so the isolate's own memory can be read (isolate-memory.ts).
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { type TeacherProcess, launchTeacher } from "../teacher/launch.ts";
import { WRANGLER, applyLocalMigrations, descendants, processMemory } from "../scripts/stack.ts";
import { type IsolateInspector, inspectIsolate } from "./isolate-memory.ts";

export interface MiniflareStackOptions {
  port: number;
  teacherPort: number;
  teacherToken: string;
  /** Local state (D1), laid out as `wrangler dev --persist-to` lays it out; wiped first. */
  persistTo: string;
  /** Where the dry-run bundle goes; wiped first. */
  outdir: string;
  /** Worker vars over wrangler.toml's. */
  vars?: Record<string, string>;
  /** Another wrangler configuration than wrangler.toml. */
  config?: string;
}

export interface MiniflareStack {
  workerUrl: string;
  teacher: TeacherProcess;
  startTeacher(): Promise<void>;
  /** Resident memory of the workerd process that runs the Worker (and D1, queues, Miniflare's own workers). */
  workerdMemory(): { worker: number; proxy: number };
  isolate: IsolateInspector;
  mf: Miniflare;
  stop(): Promise<void>;
}

const QUIET_ENV = { WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };

/** The bundle as deployed; its modules in the order Miniflare wants (the entry first). */
type ModuleType = "ESModule" | "CompiledWasm" | "Data" | "Text";

export function buildBundle(outdir: string, config = "wrangler.toml"): { path: string; type: ModuleType }[] {
  rmSync(outdir, { recursive: true, force: true });
  execFileSync(WRANGLER, ["deploy", "--dry-run", "--config", config, "--outdir", outdir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...QUIET_ENV },
  });
  // wrangler.toml's rules: .wasm precompiled, .onnx as bytes, the rest (the dashboard's scripts and
  // styles) as text. The dry run names them by content hash, so the extension is what is left to go by.
  const type = (f: string): ModuleType =>
    f.endsWith(".wasm") ? "CompiledWasm" : f.endsWith(".onnx") ? "Data" : "Text";
  const others = readdirSync(outdir).filter((f) => f !== "index.js" && !f.endsWith(".map") && f !== "README.md");
  return [
    { path: join(outdir, "index.js"), type: "ESModule" as const },
    ...others.map((f) => ({ path: join(outdir, f), type: type(f) })),
  ];
}

export async function startMiniflareStack(o: MiniflareStackOptions): Promise<MiniflareStack> {
  const config = o.config ?? "wrangler.toml";
  const modules = buildBundle(resolve(o.outdir), config);
  rmSync(o.persistTo, { recursive: true, force: true });
  applyLocalMigrations(o.persistTo);
  const teacherArgs = ["--port", String(o.teacherPort)];
  const teacherEnv = { TEACHER_TOKEN: o.teacherToken };
  let teacher = await launchTeacher({ args: teacherArgs, env: teacherEnv });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(config);
  const { modulesRules: _rules, ...bindings } = workerOptions;
  const name = unstable_readConfig({ config }).name ?? "worker";
  let mf: Miniflare;
  try {
    mf = new Miniflare({
      ...bindings,
      name,
      modules,
      modulesRoot: resolve(o.outdir),
      bindings: { ...(workerOptions.bindings as Record<string, unknown>), TEACHER_URL: teacher.url, ...o.vars },
      host: "127.0.0.1",
      port: o.port,
      d1Persist: join(o.persistTo, "v3", "d1"),
      inspectorPort: 0,
    });
    await mf.ready;
  } catch (err) {
    await teacher.stop();
    throw err;
  }
  const isolate = await inspectIsolate(mf, name);
  return {
    workerUrl: `http://127.0.0.1:${o.port}`,
    get teacher() {
      return teacher;
    },
    async startTeacher() {
      teacher = await launchTeacher({ args: teacherArgs, env: teacherEnv });
    },
    workerdMemory() {
      const pids = descendants(process.pid, "workerd");
      if (pids.length === 0) throw new Error("no workerd process under this one");
      return { worker: pids.reduce((n, pid) => n + processMemory(pid).rss, 0), proxy: 0 };
    },
    isolate,
    mf,
    async stop() {
      isolate.close();
      await Promise.all([mf.dispose(), teacher.stop()]);
    },
  };
}

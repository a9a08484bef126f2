// The local system: the teacher host and `wrangler dev` (the Worker in workerd, with local D1), started
// together and stopped together. scripts/start.ts (`npm start`) and bench/loadtest.ts both use it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TeacherProcess, eachLine, launchTeacher } from "../teacher/launch.ts";

export const WRANGLER = join("node_modules", ".bin", "wrangler");
const QUIET_ENV = { WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };

export interface StackOptions {
  workerPort: number;
  teacherPort: number;
  /** The secret the teacher host checks (its environment); the Worker gets it from .dev.vars or vars. */
  teacherToken: string;
  /** Another wrangler configuration than wrangler.toml (in the same folder, so its paths hold). */
  config?: string;
  /** wrangler's local state (D1); default .wrangler/state. */
  persistTo?: string;
  /** Extra Worker vars (override wrangler.toml and .dev.vars). */
  vars?: Record<string, string>;
  /** Lets GET /__scheduled?cron=<expression> fire a Cron Trigger (wrangler dev's --test-scheduled). */
  testScheduled?: boolean;
  /** Where both processes' log lines go. */
  log?: (source: "teacher" | "worker", line: string) => void;
  /** Aborting while the stack starts stops what has started and rejects. */
  signal?: AbortSignal;
}

export interface Stack {
  workerUrl: string;
  teacherUrl: string;
  teacher: TeacherProcess;
  wrangler: ChildProcess;
  /** Stops the teacher (e.g. to test faults); startTeacher() brings it back on the same port. */
  stopTeacher(): Promise<void>;
  startTeacher(): Promise<void>;
  /**
   * Resident memory, in bytes, of the workerd processes under wrangler dev: `worker` runs the Worker
   * (the figure that matters for it), `proxy` is wrangler's own dev proxy in front of it.
   */
  workerdMemory(): { worker: number; proxy: number };
  stop(): Promise<void>;
}

/** Applies migrations/ to the local D1 database that `wrangler dev` will use. */
export function applyLocalMigrations(persistTo?: string): void {
  const args = ["d1", "migrations", "apply", "DB", "--local", ...(persistTo ? ["--persist-to", persistTo] : [])];
  execFileSync(WRANGLER, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...QUIET_ENV } });
}

async function waitHealthy(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
  recent: string[],
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (child.exitCode !== null)
      throw new Error(`wrangler dev exited with code ${child.exitCode}:\n${recent.join("\n")}`);
    try {
      const r = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `wrangler dev did not answer ${url}/v2/health/live within ${timeoutMs / 1000} s:\n${recent.join("\n")}`,
  );
}

/** Process ids below `root` whose command is `name` (Linux /proc). */
export function descendants(root: number, name: string): number[] {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      comm.set(Number(entry), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(entry), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // exited while we looked
    }
  }
  const under = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  return [...comm].filter(([pid, c]) => c === name && under(pid)).map(([pid]) => pid);
}

/**
 * A process's resident memory and its peak (VmHWM), in bytes (Linux /proc). `resetPeak` starts the
 * peak afresh from now (the kernel's clear_refs), so it can bracket one burst of work.
 */
export function processMemory(pid: number, resetPeak = false): { rss: number; peak: number } {
  if (resetPeak) writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    if (!m) throw new Error(`no ${field} for process ${pid}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

const rssBytes = (pid: number) => processMemory(pid).rss;

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? (() => {});
  const teacherArgs = ["--port", String(options.teacherPort)];
  const teacherEnv = { TEACHER_TOKEN: options.teacherToken };
  let teacher = await launchTeacher({ args: teacherArgs, env: teacherEnv, log: (l) => log("teacher", l) });
  const teacherUrl = teacher.url;
  if (options.signal?.aborted) {
    await teacher.stop();
    options.signal.throwIfAborted();
  }

  const vars = { TEACHER_URL: teacherUrl, ...options.vars };
  const args = [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(options.workerPort),
    "--show-interactive-dev-session=false",
    "--log-level",
    "warn",
  ];
  if (options.persistTo) args.push("--persist-to", options.persistTo);
  if (options.config) args.push("--config", options.config);
  if (options.testScheduled) args.push("--test-scheduled");
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  // Its own process group, so stopping it also stops the workerd it starts.
  const wrangler = spawn(WRANGLER, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...QUIET_ENV },
    detached: true,
  });
  const recent: string[] = [];
  const onLine = (line: string) => {
    log("worker", line);
    recent.push(line);
    if (recent.length > 30) recent.shift();
  };
  eachLine(wrangler.stdout!, onLine);
  eachLine(wrangler.stderr!, onLine);
  const workerUrl = `http://127.0.0.1:${options.workerPort}`;
  const exited = new Promise<void>((r) => wrangler.once("exit", () => r()));

  const stopWrangler = async () => {
    if (wrangler.exitCode !== null || wrangler.signalCode !== null) return;
    try {
      process.kill(-wrangler.pid!, "SIGTERM");
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-wrangler.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitHealthy(workerUrl, wrangler, 180_000, recent, options.signal);
  } catch (err) {
    await Promise.all([stopWrangler(), teacher.stop()]);
    throw err;
  }

  return {
    workerUrl,
    teacherUrl,
    wrangler,
    get teacher() {
      return teacher;
    },
    stopTeacher: () => teacher.stop(),
    async startTeacher() {
      teacher = await launchTeacher({
        args: ["--port", new URL(teacherUrl).port],
        env: teacherEnv,
        log: (l) => log("teacher", l),
      });
    },
    workerdMemory() {
      const pids = descendants(wrangler.pid!, "workerd");
      // The proxy is the one listening on the dev port; the Worker's runtime listens on a free port.
      const isProxy = (pid: number) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`--socket-addr=entry=127.0.0.1:${options.workerPort}`);
      const worker = pids.filter((p) => !isProxy(p));
      if (worker.length === 0) throw new Error("no workerd process running the Worker found under wrangler dev");
      const sum = (list: number[]) => list.reduce((n, pid) => n + rssBytes(pid), 0);
      return { worker: sum(worker), proxy: sum(pids.filter(isProxy)) };
    },
    async stop() {
      await Promise.all([stopWrangler(), teacher.stop()]);
    },
  };
}

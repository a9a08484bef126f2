// Starts `teacher/main.ts` as a child process and resolves once it listens, with its URL. Used by the
// test setups, scripts/start.ts and the load test, so all of them run the real host the same way.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const LISTENING = /teacher: listening on (http:\/\/\S+)/;

export interface LaunchOptions {
  /** Extra command-line flags for teacher/main.ts (e.g. ["--manifest", path, "--port", "0"]). */
  args?: string[];
  /** Give up when the host has not said it listens after this long. */
  startTimeoutMs?: number;
  /** Where the host's log lines go; default: dropped, except for the reason it failed to start. */
  log?: (line: string) => void;
  /** Extra environment for the host, e.g. { TEACHER_TOKEN }: secrets go here, never in args. */
  env?: Record<string, string>;
}

export interface TeacherProcess {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** Calls `each` with every complete line a stream writes. */
export function eachLine(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    parts.forEach(each);
  });
}

export function launchTeacher(options: LaunchOptions = {}): Promise<TeacherProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...(options.args ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const recent: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(
        new Error(`teacher host did not start within ${options.startTimeoutMs ?? 60_000} ms:\n${recent.join("\n")}`),
      );
    }, options.startTimeoutMs ?? 60_000);
    const onLine = (line: string) => {
      options.log?.(line);
      recent.push(line);
      if (recent.length > 20) recent.shift();
      const m = LISTENING.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child, stop });
      }
    };
    eachLine(child.stdout!, onLine);
    eachLine(child.stderr!, onLine);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`teacher host exited (${signal ?? `code ${code}`}) before listening:\n${recent.join("\n")}`));
    });
  });
}

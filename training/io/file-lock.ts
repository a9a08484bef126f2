// A lock between processes that share a file (two `--only` processes of one run append to the same
// metrics log): `<path>.lock` is created exclusively and holds the owner's pid. A lock whose owner
// has died (a run killed by SIGKILL) is taken over.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";

const WAIT_MS = 20;

function ownerAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lock, "utf8"));
  } catch {
    return false; // gone already
  }
  if (!Number.isInteger(pid) || pid <= 0) return false; // torn write by a process killed while locking
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Runs `fn` holding the lock of `path`; waits up to `timeoutMs` for another holder. */
export function withFileLock<T>(path: string, fn: () => T, timeoutMs = 30_000): T {
  const lock = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, "wx");
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (!ownerAlive(lock)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${lock}: held by another process for over ${timeoutMs / 1000} s (remove it if no run is writing ${path})`,
        );
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WAIT_MS);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

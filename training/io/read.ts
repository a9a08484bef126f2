// Reading a file whose absence is the user's problem to fix: the error names the file and what it is.
import { readFileSync } from "node:fs";

/** readFileSync, with "<path>: <what> not found" / "<path>: cannot read <what> (...)" errors of the caller's class. */
export function readFileOrExplain(path: string, what: string, makeError: (message: string) => Error): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw makeError(
      code === "ENOENT" ? `${path}: ${what} not found` : `${path}: cannot read ${what} (${(err as Error).message})`,
    );
  }
}

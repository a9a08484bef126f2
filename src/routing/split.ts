// Which arm a request goes to. A client's bucket is a hash of its id salted with the experiment's
// name, so the same client always lands on the same arm for a given split, the share of clients on
// the student tracks the setting as the number of clients grows, and a new experiment (a new name)
// draws a new set of clients for the student rather than reusing the last one's.
import type { Arm } from "../measurements/records.ts";

/** Buckets per client: 10,000, so a split can be set to 0.01 percent. */
const BUCKETS = 10_000;

/** The experiment name when EXPERIMENT is unset. */
export const DEFAULT_EXPERIMENT = "default";

/** A stable number in [0, 10000) for a client in an experiment: the first 32 bits of SHA-256, modulo. */
export async function clientBucket(clientId: string, experiment: string): Promise<number> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${experiment}\u0000${clientId}`));
  return new DataView(digest).getUint32(0) % BUCKETS;
}

export interface Assignment {
  arm: Arm;
  /** "forced": by the request header (X-Force-Arm); "split": the client's bucket. */
  reason: "forced" | "split";
}

/** The arm for a client under a split of `studentPercent` (0..100) unless the request forces one. */
export async function assignArm(
  clientId: string,
  studentPercent: number,
  experiment: string,
  override?: Arm,
): Promise<Assignment> {
  if (override) return { arm: override, reason: "forced" };
  const bucket = await clientBucket(clientId, experiment);
  return { arm: bucket < studentPercent * (BUCKETS / 100) ? "student" : "teacher", reason: "split" };
}

/** A per-request draw (not sticky): true with probability percent / 100. */
export function draw(percent: number): boolean {
  return percent > 0 && Math.random() * 100 < percent;
}

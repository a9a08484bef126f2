// Deliberate misbehaviour for testing what the Worker does when its teacher is slow or answers
// garbage (the down case needs no help: stop the process). Off unless the host is started with
// --fault-delay-ms or --fault-garbage; health and metadata stay truthful, only inference suffers.
import type { MiddlewareHandler } from "hono";

export interface FaultOptions {
  /** Wait this long before answering each inference request. */
  delayMs?: number;
  /** Answer inference requests with 200 and a body that is not a valid inference response. */
  garbage?: boolean;
}

/** Garbage in turns: not JSON at all, JSON without outputs, outputs of the wrong size. */
const GARBAGE = [
  { type: "application/json", body: '{"model_name": "teacher", "outputs": [' },
  { type: "application/json", body: '{"model_name": "teacher", "model_version": "1", "outputs": []}' },
  {
    type: "application/json",
    body: '{"model_name": "teacher", "model_version": "1", "outputs": [{"name": "probabilities", "shape": [1, 2], "datatype": "FP32", "data": [0.5, "x"]}]}',
  },
];

export function faults(options: FaultOptions): MiddlewareHandler {
  let served = 0;
  return async (c, next) => {
    if (c.req.method !== "POST" || !c.req.path.endsWith("/infer")) return next();
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    if (!options.garbage) return next();
    const g = GARBAGE[served++ % GARBAGE.length]!;
    return c.body(g.body, 200, { "Content-Type": g.type });
  };
}

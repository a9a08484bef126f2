// Prometheus metrics of the teacher host (prom-client), served at GET /metrics: requests and failures
// by endpoint and status, request latency, the batch size and duration of every onnxruntime run, the
// requests waiting (for a concurrency slot, for a batch), and Node's process metrics. Endpoints are
// named from a fixed list, never from the URL, so a caller cannot grow the label set.
import type { Handler, MiddlewareHandler } from "hono";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface MetricsOptions {
  /** Node's process metrics (memory, CPU, event-loop lag, garbage collection); default on. */
  processMetrics?: boolean;
}

/** Seconds, from a fast batch-1 run to a client's whole request timing out. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** The endpoint a request is for: a fixed set of names. */
export function endpointOf(method: string, path: string): string {
  if (method === "POST" && /^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/.test(path)) return "infer";
  if (method === "POST" && path === "/v1/classify") return "classify";
  if (path.startsWith("/v2/health/")) return "health";
  if (path.startsWith("/v2/models/")) return "metadata";
  if (path === "/v2") return "server";
  if (path === "/metrics") return "metrics";
  return "other";
}

export class TeacherMetrics {
  readonly registry = new Registry();
  private slotQueue = 0;
  private batchQueue: () => number = () => 0;
  private readonly requestsTotal: Counter<"endpoint" | "code">;
  private readonly failuresTotal: Counter<"endpoint" | "code">;
  private readonly duration: Histogram<"endpoint">;
  private readonly batchSize: Histogram;
  private readonly inferenceDuration: Histogram;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.requestsTotal = new Counter({
      name: "teacher_requests_total",
      help: "Requests answered, by endpoint and HTTP status.",
      labelNames: ["endpoint", "code"],
      registers,
    });
    this.failuresTotal = new Counter({
      name: "teacher_request_failures_total",
      help: "Requests answered with a status of 400 or above, by endpoint and HTTP status.",
      labelNames: ["endpoint", "code"],
      registers,
    });
    this.duration = new Histogram({
      name: "teacher_request_duration_seconds",
      help: "Time from a request's headers to its answer (the body's arrival, queueing and inference included), by endpoint.",
      labelNames: ["endpoint"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: "teacher_batch_size",
      help: "Images in each onnxruntime run.",
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.inferenceDuration = new Histogram({
      name: "teacher_inference_duration_seconds",
      help: "Duration of each onnxruntime run.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const metrics = this;
    new Gauge({
      name: "teacher_queue_depth",
      help: 'Requests waiting: for a concurrency slot (stage="slot"), or with their slot, for a batch to run in (stage="batch").',
      labelNames: ["stage"],
      registers,
      collect() {
        this.set({ stage: "slot" }, metrics.slotQueue);
        this.set({ stage: "batch" }, metrics.batchQueue());
      },
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts and times every request; first in the chain, so refusals count too. */
  requests(): MiddlewareHandler {
    return async (c, next) => {
      const started = performance.now();
      await next();
      const endpoint = endpointOf(c.req.method, c.req.path);
      const code = String(c.res.status);
      this.requestsTotal.inc({ endpoint, code });
      if (c.res.status >= 400) this.failuresTotal.inc({ endpoint, code });
      this.duration.observe({ endpoint }, (performance.now() - started) / 1000);
    };
  }

  /** GET /metrics, in Prometheus's text format. */
  readonly handler: Handler = async (c) =>
    c.body(await this.registry.metrics(), 200, { "Content-Type": this.registry.contentType });

  /** For the batcher: one onnxruntime run. */
  readonly run = (run: { images: number; ms: number }): void => {
    this.batchSize.observe(run.images);
    this.inferenceDuration.observe(run.ms / 1000);
  };

  /** For the concurrency bound: requests waiting for a slot. */
  readonly slots = (state: { waiting: number }): void => {
    this.slotQueue = state.waiting;
  };

  /** Where the number of requests waiting for a batch is read when scraped. */
  countBatchQueue(depth: () => number): void {
    this.batchQueue = depth;
  }
}

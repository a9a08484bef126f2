// One inference at a time, requests first. An isolate has one onnxruntime-web WASM instance for all
// its models, and its runs must not overlap: onnxruntime-web 1.30's run() (ort.wasm.mjs) takes its
// argument arrays from the instance's one WASM stack (stackSave, stackAlloc), awaits while it prepares
// the tensors, and restores the stack at the end, so two runs in flight would free each other's
// arguments. Background work (warm-up runs) waits while any request's run is queued, so a request
// waits for at most the one background run already going.

export type Priority = "request" | "background";

interface Job {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

export class SerialRunner {
  private readonly queues: Record<Priority, Job[]> = { request: [], background: [] };
  private busy = false;

  /** Runs `work` when nothing else runs and (for background work) no request waits. */
  run<T>(work: () => Promise<T>, priority: Priority = "request"): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queues[priority].push({ work, resolve: resolve as (value: unknown) => void, reject });
      this.next();
    });
  }

  /** Runs waiting, by priority. */
  get waiting(): { request: number; background: number } {
    return { request: this.queues.request.length, background: this.queues.background.length };
  }

  private next(): void {
    if (this.busy) return;
    const job = this.queues.request.shift() ?? this.queues.background.shift();
    if (!job) return;
    this.busy = true;
    let started: Promise<unknown>;
    try {
      started = job.work();
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(job.resolve, job.reject).finally(() => {
      this.busy = false;
      this.next();
    });
  }
}

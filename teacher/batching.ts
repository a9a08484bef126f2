// Dynamic batching, as Triton's dynamic batcher does it: requests for the same model that arrive
// close together run as one onnxruntime batch (their inputs stacked along the batch dimension) and
// each gets its own rows of the outputs back. A batch runs when it holds `maxBatch` images, or when
// its oldest request has waited `windowMs` (not at all when no other request is on its way); while
// one batch runs the next one gathers. Only requests
// that parsed and validated reach a batch, and a batch whose run fails is run again one request at a
// time, so one request's failure stays its own.
import type { Manifest, ModelEntry } from "../models/schema.ts";
import type { Engine, Session } from "../src/models/engine.ts";
import { type ModelFileSource, type ModelFiles, ModelStore, type StoreOptions } from "../src/models/store.ts";
import type { OutputTensor } from "../src/oip/response.ts";

export interface BatchingOptions {
  /** Most images in one run; 1 runs every request on its own (batching off). Default 32. */
  maxBatch?: number;
  /** How long the oldest waiting request waits for others to join it; default 2 ms. */
  windowMs?: number;
  /** Told of every run: images, requests and milliseconds (the metrics' batch size). */
  onRun?: (run: { images: number; requests: number; ms: number }) => void;
  /**
   * Requests inside the host that have not reached the batcher yet (the teacher host: those holding a
   * concurrency slot, less those here). When given and zero, nobody is coming to share a run, so a
   * request runs at once instead of waiting out the window; absent, the window is always waited.
   */
  arriving?: () => number;
}

export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_BATCH_WINDOW_MS = 2;

type Outputs = Map<string, OutputTensor>;

interface Pending {
  input: Float32Array;
  dims: number[];
  /** Requests can only share a batch when their shapes past the batch dimension agree. */
  shape: string;
  arrived: number;
  onStart: (() => void) | undefined;
  resolve: (outputs: Outputs) => void;
  reject: (reason: unknown) => void;
}

const images = (p: Pending) => p.dims[0]!;

/** One session's queue: gathers requests into batches and runs them one at a time. */
export class Batcher {
  private readonly queue: Pending[] = [];
  private running = false;
  /** Requests in the run going on. */
  private inRun = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly maxBatch: number;
  private readonly windowMs: number;

  constructor(
    private readonly session: Session,
    private readonly options: BatchingOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.windowMs = options.windowMs ?? DEFAULT_BATCH_WINDOW_MS;
  }

  /** Requests waiting for a run. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Requests waiting or running. */
  get holding(): number {
    return this.queue.length + this.inRun;
  }

  /** Runs the input as part of the next batch; `onStart` is called when that batch starts. */
  run(input: Float32Array, dims: number[], onStart?: () => void): Promise<Outputs> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        input,
        dims,
        shape: dims.slice(1).join("x"),
        arrived: performance.now(),
        onStart,
        resolve,
        reject,
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const head = this.queue[0]!;
    const ready = this.queue.reduce((n, p) => (p.shape === head.shape ? n + images(p) : n), 0);
    const wait = head.arrived + this.windowMs - performance.now();
    if (ready >= this.maxBatch || wait <= 0 || this.options.arriving?.() === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.runNext();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, wait);
    }
  }

  /** The oldest request and those after it of the same shape, up to maxBatch images (the oldest always). */
  private take(): Pending[] {
    const head = this.queue[0]!;
    const batch: Pending[] = [];
    let total = 0;
    for (let i = 0; i < this.queue.length; ) {
      const p = this.queue[i]!;
      if (p.shape === head.shape && (batch.length === 0 || total + images(p) <= this.maxBatch)) {
        batch.push(p);
        total += images(p);
        this.queue.splice(i, 1);
        if (total >= this.maxBatch) break;
      } else {
        i++;
      }
    }
    return batch;
  }

  private async runNext(): Promise<void> {
    this.running = true;
    const batch = this.take();
    this.inRun = batch.length;
    for (const p of batch) p.onStart?.();
    try {
      if (batch.length === 1) {
        await this.settle(batch[0]!, () => this.timed(batch, () => this.session.run(batch[0]!.input, batch[0]!.dims)));
      } else {
        await this.runTogether(batch);
      }
    } finally {
      this.running = false;
      this.inRun = 0;
      // Let the event loop read what arrived during the run before the next batch is formed.
      setImmediate(() => this.schedule());
    }
  }

  private async runTogether(batch: Pending[]): Promise<void> {
    const total = batch.reduce((n, p) => n + images(p), 0);
    const input = new Float32Array(batch.reduce((n, p) => n + p.input.length, 0));
    let offset = 0;
    for (const p of batch) {
      input.set(p.input, offset);
      offset += p.input.length;
    }
    let split: Outputs[];
    try {
      const outputs = await this.timed(batch, () => this.session.run(input, [total, ...batch[0]!.dims.slice(1)]));
      split = splitRows(outputs, batch.map(images));
    } catch {
      // Whichever request the runtime refused, the others must not pay for it: each runs alone.
      for (const p of batch) await this.settle(p, () => this.timed([p], () => this.session.run(p.input, p.dims)));
      return;
    }
    batch.forEach((p, i) => {
      p.resolve(split[i]!);
    });
  }

  private async settle(p: Pending, work: () => Promise<Outputs>): Promise<void> {
    try {
      p.resolve(await work());
    } catch (err) {
      p.reject(err);
    }
  }

  private async timed(batch: Pending[], work: () => Promise<Outputs>): Promise<Outputs> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.options.onRun?.({
        images: batch.reduce((n, p) => n + images(p), 0),
        requests: batch.length,
        ms: performance.now() - started,
      });
    }
  }
}

/** Cuts each output into the requests' rows; throws when an output has no batch dimension to cut. */
export function splitRows(outputs: Outputs, rows: number[]): Outputs[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts = rows.map(() => new Map<string, OutputTensor>());
  for (const [name, tensor] of outputs) {
    if (tensor.dims[0] !== total)
      throw new Error(
        `output "${name}" has shape [${tensor.dims.join(", ")}], not ${total} rows: it cannot be split by request`,
      );
    const perRow = total === 0 ? 0 : tensor.data.length / total;
    let row = 0;
    rows.forEach((n, i) => {
      parts[i]!.set(name, {
        dims: [n, ...tensor.dims.slice(1)],
        data: tensor.data.subarray(row * perRow, (row + n) * perRow),
      });
      row += n;
    });
  }
  return parts;
}

/**
 * The Worker's model store with every run going through a Batcher per session instead of one at a
 * time: the store's loading, checks and versions stay as they are (the Worker's store is untouched).
 */
export class BatchingStore extends ModelStore {
  /** By session, so a new version of a model gets a queue of its own (the teacher host serves one). */
  private readonly batchers = new Map<Session, Batcher>();

  constructor(
    manifest: Manifest,
    files: ModelFiles | ModelFileSource,
    engine: Engine,
    private readonly batching: BatchingOptions = {},
    options: StoreOptions = {},
  ) {
    super(manifest, files, engine, options);
  }

  /** Requests waiting for a run, over all models. */
  get waiting(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.waiting;
    return n;
  }

  /** Requests waiting or running, over all models. */
  get holding(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.holding;
    return n;
  }

  override async run(entry: ModelEntry, input: Float32Array, dims: number[], onStart?: () => void): Promise<Outputs> {
    const session = await this.session(entry);
    let batcher = this.batchers.get(session);
    if (!batcher) {
      batcher = new Batcher(session, this.batching);
      this.batchers.set(session, batcher);
    }
    return batcher.run(input, dims, onStart);
  }
}

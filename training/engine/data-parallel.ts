// Data-parallel training over worker threads, for the wasm backend (single-threaded under Node):
// replica 0 is the calling thread, replicas 1..N-1 are workers, each with its own wasm backend and a
// copy of the model. Every step:
//   1. the main thread broadcasts the current weights and hands each worker its share of the batch;
//   2. every replica computes its share's loss and gradients, the share's mean loss weighted by
//      share/batch, so that the sum over replicas is the whole batch's mean loss;
//   3. batch norm sums its per-channel statistics over all replicas, forward and backward
//      (synchronized batch norm, batchnorm.ts): the batch statistics, the moving averages and the
//      gradients are those of the whole batch, not of each share;
//   4. the main thread sums the replicas' gradients; the optimizer then runs on the main thread only.
// So a step equals single-process training at the same global batch up to float rounding (tested).
// The moving statistics live on the main thread's model (the workers' copies are never read).
//
// `gradients` is a synchronous GradientFn (step.ts), a drop-in for lossAndGradients: the
// threads coordinate with Atomics on shared memory (collective.ts), never with async messages.
import os from "node:os";
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import type { Loss } from "../losses/index.ts";
import type { Graph } from "../model/graph.ts";
import { type GradientFn, type Gradients, lossAndGradients } from "./step.ts";
import type { Convolutions } from "./backend.ts";
import { setBatchNormAllReduce } from "../model/batch-norm-op.ts";
import { COMMAND, CTRL, CTRL_SLOTS, ReplicaFailure, makeAllReduce, signalFailure, waitWhile } from "./collective.ts";
import type { ReplicaConfig, ReplicaWorkerData } from "./replica-worker.ts";
import {
  type StepLayout,
  shareGradients,
  splitSizes,
  stepLayout,
  trainableSpecs,
  writeParams,
} from "./replica-step.ts";

export interface DataParallelOptions {
  /** Replicas including the calling thread; default: the machine's cores, at most 8. */
  replicas?: number;
  /** The replicas' convolutions (backend.ts); default "auto". */
  convolutions?: Convolutions;
}

interface Config {
  id: number;
  graph: Graph;
  lossKey: string;
  layout: StepLayout;
  allReduce: (v: Float64Array) => void;
  reset: () => void;
}

export class DataParallel {
  private readonly ctrl: Int32Array;
  private config: Config | null = null;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    readonly replicas: number,
    control: SharedArrayBuffer,
    private readonly workers: Worker[],
    private readonly ports: MessagePort[],
  ) {
    this.ctrl = new Int32Array(control);
  }

  /** Starts `replicas - 1` worker threads. The calling thread must already run the wasm backend. */
  static async start({
    replicas = Math.min(8, os.availableParallelism()),
    convolutions = "auto",
  }: DataParallelOptions = {}): Promise<DataParallel> {
    if (!Number.isInteger(replicas) || replicas < 1)
      throw new Error(`replicas must be a positive integer, got ${replicas}`);
    if (tf.getBackend() !== "wasm")
      throw new Error(
        `data-parallel training runs on the wasm backend (this process runs "${tf.getBackend()}", which uses all cores by itself)`,
      );
    const control = new SharedArrayBuffer(CTRL_SLOTS * 4);
    const workers: Worker[] = [];
    const ports: MessagePort[] = [];
    try {
      await Promise.all(
        Array.from({ length: replicas - 1 }, (_, i) => {
          const { port1, port2 } = new MessageChannel();
          const data: ReplicaWorkerData = { rank: i + 1, replicas, control, port: port2, convolutions };
          const worker = new Worker(new URL("./replica-worker.mjs", import.meta.url), {
            workerData: data,
            transferList: [port2],
          });
          workers.push(worker);
          ports.push(port1);
          return new Promise<void>((resolve, reject) => {
            port1.once("message", () => resolve());
            worker.once("error", (err) =>
              reject(new Error(`data-parallel replica ${i + 1} failed to start: ${err.message}`)),
            );
            worker.once("exit", (code) =>
              reject(new Error(`data-parallel replica ${i + 1} exited (code ${code}) while starting`)),
            );
          });
        }),
      );
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    for (const w of workers) {
      w.removeAllListeners("exit");
      w.removeAllListeners("error");
      w.on("error", () => {}); // reported through the port and the failure flag
      w.unref(); // an unclosed pool must not keep the process alive
    }
    for (const p of ports) p.unref();
    return new DataParallel(replicas, control, workers, ports);
  }

  /** How the engine reads in logs and reports, given the single backend's device line. */
  describe(device: string): string {
    return this.replicas === 1 ? device : `${this.replicas} data-parallel replicas (threads), each ${device}`;
  }

  /** Drop-in for step.ts' lossAndGradients. */
  readonly gradients: GradientFn = (model, batch, loss, teacherLogits) => {
    if (this.failure) throw new Error(`the data-parallel pool failed earlier: ${this.failure.message}`);
    if (this.closed) throw new Error("the data-parallel pool is closed");
    if (this.replicas === 1 || batch.size < this.replicas) return lossAndGradients(model, batch, loss, teacherLogits);
    const cfg = this.configure(model.graph, loss, batch.size);
    const { height, width, channels } = model.graph.input;
    const pixels = height * width * channels;
    const classes = model.graph.numClasses;
    const sizes = splitSizes(batch.size, this.replicas);

    writeParams(model, cfg.layout.weights);
    let start = sizes[0]!;
    for (let r = 1; r < this.replicas; r++) {
      const slots = cfg.layout.workers[r]!;
      const n = sizes[r]!;
      slots.meta.set([n, batch.size, teacherLogits ? 1 : 0, 0]);
      slots.images.set(batch.images.subarray(start * pixels, (start + n) * pixels));
      slots.labels.set(batch.labels.subarray(start, start + n));
      if (teacherLogits) slots.teacher.set(teacherLogits.subarray(start * classes, (start + n) * classes));
      start += n;
    }
    Atomics.store(this.ctrl, CTRL.DONE, 0);
    Atomics.store(this.ctrl, CTRL.CONFIG, cfg.id);
    Atomics.store(this.ctrl, CTRL.COMMAND, COMMAND.STEP);
    Atomics.add(this.ctrl, CTRL.SEQ, 1);
    Atomics.notify(this.ctrl, CTRL.SEQ);

    const n0 = sizes[0]!;
    const mine = { size: n0, images: batch.images.subarray(0, n0 * pixels), labels: batch.labels.subarray(0, n0) };
    let own: Gradients;
    setBatchNormAllReduce(cfg.allReduce);
    cfg.reset();
    try {
      own = shareGradients(
        model,
        mine,
        batch.size,
        loss,
        teacherLogits ? teacherLogits.subarray(0, n0 * classes) : null,
      );
      for (
        let done = Atomics.load(this.ctrl, CTRL.DONE);
        done < this.replicas - 1;
        done = Atomics.load(this.ctrl, CTRL.DONE)
      )
        waitWhile(this.ctrl, CTRL.DONE, done);
    } catch (err) {
      throw this.fail(err);
    } finally {
      setBatchNormAllReduce(null);
    }
    return this.sum(cfg, own);
  };

  /** Adds the workers' gradients, losses and counts to the main thread's. */
  private sum(cfg: Config, own: Gradients): Gradients {
    let loss = own.loss;
    let correct = own.correct;
    let crossEntropySum = own.crossEntropySum;
    const grads = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      let offset = 0;
      for (const spec of trainableSpecs(cfg.graph)) {
        const mine = own.grads.get(spec.name)!;
        let total: tf.Tensor = mine;
        for (let r = 1; r < this.replicas; r++) {
          total = total.add(tf.tensor(cfg.layout.workers[r]!.grads.slice(offset, offset + mine.size), mine.shape));
        }
        grads.set(spec.name, tf.keep(total));
        offset += mine.size;
      }
    });
    for (const t of own.grads.values()) t.dispose();
    for (let r = 1; r < this.replicas; r++) {
      loss += cfg.layout.workers[r]!.result[0]!;
      correct += cfg.layout.workers[r]!.result[1]!;
      crossEntropySum += cfg.layout.workers[r]!.result[2]!;
    }
    return { loss, correct, crossEntropySum, grads };
  }

  /** Reuses the shared buffers while the model, loss and batch size fit; else sends a new configuration. */
  private configure(graph: Graph, loss: Loss, batchSize: number): Config {
    const lossKey = JSON.stringify([loss.name, loss.options]);
    const c = this.config;
    if (c && c.graph === graph && c.lossKey === lossKey && batchSize <= c.layout.capacity) return c;
    const capacity = c && c.graph === graph ? Math.max(batchSize, c.layout.capacity) : batchSize;
    const { layout, buffer } = stepLayout(graph, this.replicas, capacity);
    const id = (c?.id ?? 0) + 1;
    const msg: ReplicaConfig = {
      config: id,
      graph,
      loss: { name: loss.name, options: loss.options },
      capacity,
      buffer,
    };
    for (const p of this.ports) p.postMessage(msg);
    const { allReduce, reset } = makeAllReduce(this.ctrl, layout.reduce, this.replicas, 0, layout.statsWidth);
    this.config = { id, graph, lossKey, layout, allReduce, reset };
    return this.config;
  }

  /** Marks the pool failed (waking every replica) and builds the error to throw, with a worker's own message when it had one. */
  private fail(err: unknown): Error {
    signalFailure(this.ctrl);
    let message = (err as Error).message ?? String(err);
    if (err instanceof ReplicaFailure) {
      for (const p of this.ports) {
        for (let m = receiveMessageOnPort(p); m; m = receiveMessageOnPort(p)) {
          const error = (m.message as { error?: string }).error;
          if (error) message = error;
        }
      }
    }
    this.failure = new Error(message);
    return err instanceof ReplicaFailure ? this.failure : (err as Error);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, CTRL.COMMAND, COMMAND.STOP);
    Atomics.add(this.ctrl, CTRL.SEQ, 1);
    Atomics.notify(this.ctrl, CTRL.SEQ);
    await Promise.all(
      this.workers.map((w) => {
        w.ref(); // keep the process alive until the worker has really gone
        return new Promise<void>((resolve) => (w.threadId === -1 ? resolve() : w.once("exit", () => resolve())));
      }),
    );
    for (const p of this.ports) p.close();
  }
}

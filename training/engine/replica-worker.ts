// A data-parallel replica on a worker thread: its own wasm backend and model copy. Each step it takes
// the main thread's weights and its share of the batch, computes that share's gradients (batch norm
// summing its statistics with the other replicas), and writes them back. See data-parallel.ts.
import { type MessagePort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { createLoss } from "../losses/index.ts";
import type { Loss } from "../losses/index.ts";
import { type Model, createModel, disposeModel } from "../model/forward.ts";
import type { Graph } from "../model/graph.ts";
import { type Convolutions, initBackend } from "./backend.ts";
import { setBatchNormAllReduce } from "../model/batch-norm-op.ts";
import { COMMAND, CTRL, ReplicaFailure, makeAllReduce, signalFailure, waitWhile } from "./collective.ts";
import { type StepLayout, readParams, shareGradients, stepLayout, writeGradients } from "./replica-step.ts";

export interface ReplicaWorkerData {
  rank: number;
  replicas: number;
  control: SharedArrayBuffer;
  port: MessagePort;
  convolutions: Convolutions;
}

/** Sent on the port before the step that needs it. */
export interface ReplicaConfig {
  config: number;
  graph: Graph;
  loss: { name: string; options: Record<string, unknown> };
  capacity: number;
  buffer: SharedArrayBuffer;
}

const { rank, replicas, control, port, convolutions } = workerData as ReplicaWorkerData;
const ctrl = new Int32Array(control);

interface State {
  config: number;
  model: Model;
  loss: Loss;
  layout: StepLayout;
  reset: () => void;
}
let state = null as State | null; // set by configure()

function configure(msg: ReplicaConfig): void {
  if (state) disposeModel(state.model);
  const { layout } = stepLayout(msg.graph, replicas, msg.capacity, msg.buffer);
  const { allReduce, reset } = makeAllReduce(ctrl, layout.reduce, replicas, rank, layout.statsWidth);
  setBatchNormAllReduce(allReduce);
  state = {
    config: msg.config,
    model: createModel(msg.graph, 0),
    loss: createLoss(msg.loss.name, msg.loss.options),
    layout,
    reset,
  };
}

function step(s: State): void {
  const slots = s.layout.workers[rank]!;
  const size = slots.meta[0]!;
  const total = slots.meta[1]!;
  const hasTeacher = slots.meta[2]! === 1;
  const { height, width, channels } = s.model.graph.input;
  readParams(s.model, s.layout.weights);
  s.reset();
  const share = {
    size,
    images: slots.images.subarray(0, size * height * width * channels),
    labels: slots.labels.subarray(0, size),
  };
  const teacher = hasTeacher ? slots.teacher.subarray(0, size * s.model.graph.numClasses) : null;
  const g = shareGradients(s.model, share, total, s.loss, teacher);
  try {
    writeGradients(s.model.graph, g.grads, slots.grads);
  } finally {
    for (const t of g.grads.values()) t.dispose();
  }
  slots.result[0] = g.loss;
  slots.result[1] = g.correct;
  slots.result[2] = g.crossEntropySum;
}

await initBackend("wasm", { log: () => {}, convolutions });
port.postMessage({ ready: true });
let seq = 0;
for (;;) {
  try {
    waitWhile(ctrl, CTRL.SEQ, seq);
  } catch {
    // The pool failed while idle: the main thread is tearing it down.
    if (Atomics.load(ctrl, CTRL.FAILED) !== 0) break;
    continue;
  }
  seq = Atomics.load(ctrl, CTRL.SEQ);
  if (Atomics.load(ctrl, CTRL.COMMAND) === COMMAND.STOP) break;
  try {
    // Configuration messages are posted before the step is signalled; take them until the one the
    // step names has arrived.
    const wanted = Atomics.load(ctrl, CTRL.CONFIG);
    const deadline = Date.now() + 10_000;
    while (state?.config !== wanted) {
      const msg = receiveMessageOnPort(port);
      if (msg) configure(msg.message as ReplicaConfig);
      else if (Date.now() > deadline) throw new Error(`configuration ${wanted} never arrived`);
      else Atomics.wait(ctrl, CTRL.FAILED, 0, 1);
    }
    step(state);
    Atomics.add(ctrl, CTRL.DONE, 1);
    Atomics.notify(ctrl, CTRL.DONE);
  } catch (err) {
    if (!(err instanceof ReplicaFailure))
      port.postMessage({ error: `replica ${rank}: ${(err as Error).stack ?? String(err)}` });
    signalFailure(ctrl);
    break;
  }
}
if (state) disposeModel(state.model);
port.close();

// SGD with momentum and decoupled-from-BN weight decay, written out (not tf.train.momentum) so its
// state is named tensors a checkpoint can store and restore exactly:
//   v <- momentum * v + (g + weightDecay * w);   w <- w - lr * v           (PyTorch's convention)
//   nesterov: w <- w - lr * (g + weightDecay * w + momentum * v)
// Weight decay applies to convolution and dense kernels only: decaying batch-norm scales and biases
// does not regularize (BN makes the net invariant to their scale) and only slows training.
import * as tf from "@tensorflow/tfjs";
import type { StoredTensor } from "../model/stored-tensor.ts";

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

/** Slot name in checkpoints: "<param>:momentum". */
const SLOT = "momentum";

export class Sgd {
  private velocity = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    readonly options: SgdOptions,
  ) {}

  /** One update with `grads` (by parameter name) at learning rate `lr`. Disposes nothing it was given. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    const { momentum, weightDecay, nesterov } = this.options;
    tf.tidy(() => {
      for (const [name, g] of grads) {
        const w = this.params.get(name);
        if (!w) throw new Error(`gradient for unknown parameter "${name}"`);
        const d = weightDecay > 0 && w.rank > 1 ? g.add(w.mul(weightDecay)) : g;
        if (momentum === 0) {
          w.assign(w.sub(d.mul(lr)));
          continue;
        }
        let v = this.velocity.get(name);
        if (!v) {
          v = tf.variable(tf.zerosLike(w), false);
          this.velocity.set(name, v);
        }
        v.assign(v.mul(momentum).add(d));
        w.assign(w.sub((nesterov ? d.add(v.mul(momentum)) : v).mul(lr)));
      }
    });
  }

  /** Slots for a checkpoint. */
  state(): Map<string, StoredTensor> {
    const out = new Map<string, StoredTensor>();
    for (const [name, v] of this.velocity)
      out.set(`${name}:${SLOT}`, { shape: v.shape, data: v.dataSync() as Float32Array });
    return out;
  }

  /** Restores slots saved by state(); any slot not given starts at zero, as in a fresh optimizer. */
  load(slots: Map<string, StoredTensor>): void {
    this.dispose();
    for (const [key, t] of slots) {
      const [name, slot] = key.split(":");
      const w = name === undefined ? undefined : this.params.get(name);
      if (!w || slot !== SLOT) throw new Error(`optimizer slot "${key}" does not belong to this model's SGD`);
      if (w.shape.join(",") !== t.shape.join(","))
        throw new Error(`optimizer slot "${key}" has shape [${t.shape}], the parameter has [${w.shape}]`);
      this.velocity.set(name!, tf.variable(tf.tensor(t.data, t.shape), false));
    }
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}

// Whether a loss can train on the data and the teacher at hand, said in one place: the run's
// configuration is checked with it before the run starts (train/check-methods.ts), and the training
// loop checks what it is actually handed (train/loop.ts).
import type { Loss } from "./loss.ts";

/** What a sub-run offers a loss. */
export interface LossSetting {
  /** The data set's name, for the message. */
  dataset: string;
  /** The data has several classes per image (multi-hot targets). */
  multiLabel: boolean;
  /** The teacher's logits are at hand. */
  logitsTeacher: boolean;
  /** The teacher runs in tfjs, where its intermediate tensors exist. */
  featureTeacher: boolean;
}

/** Why `loss` cannot train in `setting` ("<loss> is for ... data, ..."), or null when it can. */
export function lossMisfit(loss: Loss, setting: LossSetting): string | null {
  if (Boolean(loss.multiLabel) !== setting.multiLabel) {
    const data = setting.multiLabel ? "multi-label (its method: mlkd)" : "single-label";
    return `${loss.name} is for ${loss.multiLabel ? "multi-label" : "single-label"} data, and ${setting.dataset} is ${data}`;
  }
  if (loss.needsTeacher && !setting.logitsTeacher) return `${loss.name} needs a teacher`;
  if (loss.features && !setting.featureTeacher) {
    return `${loss.name} compares the teacher's intermediate tensors, which an ONNX teacher file does not give; use a teacher checkpoint (.ndckpt), run in tfjs`;
  }
  return null;
}

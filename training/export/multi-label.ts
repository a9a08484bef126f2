// The accuracy figures of a multi-label model measured on its ONNX file (onnxruntime-node): the
// fraction of images whose top-scoring class is one of theirs (the manifest's top1) and the mean
// average precision (train/map.ts).
import type * as ort from "onnxruntime-node";
import type { Images } from "../data/layout.ts";
import { meanAveragePrecision, precisionAtOne } from "../train/map.ts";
import { onnxLogits } from "./verify.ts";

export async function multiLabelAccuracy(
  session: ort.InferenceSession,
  images: Images,
  targets: Uint8Array,
  classes: number,
): Promise<{ top1: number; mAP: number }> {
  const logits = await onnxLogits(session, images);
  const mine = targets.subarray(0, images.count * classes);
  return { top1: precisionAtOne(logits, mine, classes), mAP: meanAveragePrecision(logits, mine, classes).map };
}

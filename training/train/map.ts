// Mean average precision, the measure of multi-label classification (Pascal VOC, COCO): per class,
// rank the images by the model's score and average the precision at the rank of each image where the
// class is present (non-interpolated AP, as scikit-learn's average_precision_score); the mean over
// the classes present at least once in the set is the mAP. No tfjs: the export uses it on ONNX outputs.

/** AP of one class: `scores` and `present` are per image. NaN when the class is never present. */
export function averagePrecision(scores: ArrayLike<number>, present: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  let hits = 0;
  let sum = 0;
  order.forEach((image, rank) => {
    if (present[image]) {
      hits++;
      sum += hits / (rank + 1);
    }
  });
  return hits === 0 ? NaN : sum / hits;
}

/**
 * Per-class AP and their mean over the classes present in the set, from row-major [images, classes]
 * scores (logits or probabilities: only their order counts) and 0/1 targets.
 */
export function meanAveragePrecision(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
  classes: number,
): { map: number; perClass: number[] } {
  const images = scores.length / classes;
  const perClass = Array.from({ length: classes }, (_, c) => {
    const column = (a: ArrayLike<number>) => Array.from({ length: images }, (_, i) => a[i * classes + c]!);
    return averagePrecision(column(scores), column(targets));
  });
  const counted = perClass.filter((ap) => !Number.isNaN(ap));
  return { map: counted.length ? counted.reduce((a, b) => a + b, 0) / counted.length : 0, perClass };
}

/** Fraction of images whose top-scoring class is one of theirs (precision at 1). */
export function precisionAtOne(scores: ArrayLike<number>, targets: ArrayLike<number>, classes: number): number {
  const images = scores.length / classes;
  let right = 0;
  for (let i = 0; i < images; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[i * classes + c]! > scores[i * classes + best]!) best = c;
    if (targets[i * classes + best]) right++;
  }
  return images ? right / images : 0;
}

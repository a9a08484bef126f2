// Splits a data set lacks (no val/ or test/ folder, no test list) are held out of its training files:
// a seeded random `fraction` of each group for each missing split, so every class of an image folder
// keeps its share. A pure function of the seed, so a resumed run rebuilds the same splits.
import { DataError } from "./dataset.ts";
import { Rng } from "./rng.ts";

/**
 * `groups` (e.g. one per class) of training items; returns what stays for training and one list per
 * name in `missing`. Each group keeps at least one item for training.
 */
export function holdOut<T>(
  groups: T[][],
  missing: string[],
  fraction: number,
  seed: number,
  where: string,
): { train: T[]; held: Record<string, T[]> } {
  const rng = new Rng(seed ^ 0x401d);
  const held: Record<string, T[]> = Object.fromEntries(missing.map((m) => [m, []]));
  const train: T[] = [];
  for (const group of groups) {
    const order = rng.permutation(group.length);
    const each = Math.min(
      Math.round(group.length * fraction),
      Math.floor((group.length - 1) / Math.max(1, missing.length)),
    );
    let at = 0;
    for (const name of missing) for (let i = 0; i < each; i++) held[name]!.push(group[order[at++]!]!);
    for (; at < group.length; at++) train.push(group[order[at]!]!);
  }
  for (const name of missing) {
    if (held[name]!.length === 0)
      throw new DataError(
        `${where}: too few images to hold out a ${name} split (fraction ${fraction} of the training images); add a ${name} split or raise --holdout`,
      );
  }
  return { train, held };
}

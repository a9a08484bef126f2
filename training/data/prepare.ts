// From a loaded data set to what training uses: an optional random subset (quick runs), a validation
// split held out of the training images, and normalization statistics of the training split.
// Everything is a pure function of the options (seeded), so a resumed run rebuilds the same splits.
import { type Dataset, type ImageSet, DataError, channelStats, subset } from "./dataset.ts";
import { Rng } from "./rng.ts";

export interface SplitOptions {
  /** Training images to use before the validation split; 0 = all. */
  trainLimit: number;
  /** Training images held out for validation (data sets without a validation split of their own). */
  valSize: number;
  /** Test images to evaluate on; 0 = all. */
  testLimit: number;
  seed: number;
}

export interface PreparedData {
  name: string;
  classes: string[];
  train: ImageSet;
  /** Null when valSize is 0. */
  val: ImageSet | null;
  test: ImageSet;
  /** Of the training split, on pixels scaled to [0, 1]. */
  normalization: { mean: number[]; std: number[] };
}

function take(set: ImageSet, limit: number, rng: Rng, what: string): ImageSet {
  if (limit < 0 || !Number.isInteger(limit))
    throw new DataError(`${what} limit must be a whole number >= 0, got ${limit}`);
  if (limit === 0 || limit >= set.count) return set;
  return subset(set, rng.permutation(set.count).subarray(0, limit));
}

export function prepareData(ds: Dataset, opts: SplitOptions): PreparedData {
  const rng = new Rng(opts.seed ^ 0x5eed5);
  const pool = take(ds.train, opts.trainLimit, rng, "train");
  if (ds.val)
    return {
      name: ds.name,
      classes: ds.classes,
      train: pool,
      val: ds.val,
      test: take(ds.test, opts.testLimit, rng, "test"),
      normalization: channelStats(pool),
    };
  if (!Number.isInteger(opts.valSize) || opts.valSize < 0 || opts.valSize >= pool.count) {
    throw new DataError(
      `validation size must be a whole number from 0 to ${pool.count - 1} (the training images available), got ${opts.valSize}`,
    );
  }
  const order = rng.permutation(pool.count);
  const train = opts.valSize === 0 ? pool : subset(pool, order.subarray(opts.valSize));
  const val = opts.valSize === 0 ? null : subset(pool, order.subarray(0, opts.valSize));
  const test = take(ds.test, opts.testLimit, rng, "test");
  return { name: ds.name, classes: ds.classes, train, val, test, normalization: channelStats(train) };
}

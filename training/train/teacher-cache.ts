// Exact caching of the teacher's logits. Without random erasing, a training image's augmentation is
// one of a finite set of views (crop offsets x flips: 50 for Fashion-MNIST's 2-pixel crop), and the
// teacher is a fixed function in inference mode, so its logits for a view never change. KD students
// of one seed see the same views in the same order (plan.ts), and later seeds draw many of them
// again: caching every view the teacher has seen replaces most teacher runs by a lookup.
//
// The cache is one Float32Array of [images x views x classes] plus a bit per entry, allocated only
// when it fits `maxBytes` (Fashion-MNIST: 55,000 x 50 x 10 floats, 110 MB); batches without view keys
// (erasing, evaluation sets) go straight to the teacher.
import type { Batch } from "../data/batches.ts";
import type { Teacher } from "./teacher.ts";

export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;

export interface CacheStats {
  /** Images answered from the cache, and those the teacher had to run on. */
  hits: number;
  misses: number;
}

export interface CachedTeacher extends Teacher {
  stats(): CacheStats;
}

/**
 * Wraps `teacher` with a cache over `images x views` keys (Batch.views), or returns null when that
 * would take more than `maxBytes`.
 */
export function cacheTeacher(teacher: Teacher, images: number, views: number, classes: number, maxBytes = DEFAULT_CACHE_BYTES): CachedTeacher | null {
  const entries = images * views;
  if (entries * classes * 4 > maxBytes) return null;
  const logits = new Float32Array(entries * classes);
  const known = new Uint8Array(entries);
  const stats: CacheStats = { hits: 0, misses: 0 };
  return {
    ...teacher,
    engine: `${teacher.engine}, cached per augmented view`,
    stats: () => ({ ...stats }),
    async logits(batch: Batch): Promise<Float32Array> {
      const keys = batch.views;
      if (!keys) return teacher.logits(batch);
      const out = new Float32Array(batch.size * classes);
      const missing: number[] = [];
      for (let i = 0; i < batch.size; i++) {
        const key = keys[i]!;
        if (key >= entries) throw new Error(`teacher cache: view key ${key} out of range (${entries} entries)`);
        if (known[key]) out.set(logits.subarray(key * classes, (key + 1) * classes), i * classes);
        else missing.push(i);
      }
      stats.hits += batch.size - missing.length;
      stats.misses += missing.length;
      if (missing.length === 0) return out;
      // One teacher run over the missing images only (the whole batch when nothing was cached).
      const size = batch.images.length / batch.size;
      const sub: Batch =
        missing.length === batch.size
          ? batch
          : { images: gather(batch.images, missing, size), labels: Int32Array.from(missing, (i) => batch.labels[i]!), size: missing.length, views: Uint32Array.from(missing, (i) => keys[i]!) };
      const fresh = await teacher.logits(sub);
      missing.forEach((i, j) => {
        const row = fresh.subarray(j * classes, (j + 1) * classes);
        out.set(row, i * classes);
        logits.set(row, keys[i]! * classes);
        known[keys[i]!] = 1;
      });
      return out;
    },
  };
}

function gather(images: Float32Array, rows: number[], size: number): Float32Array {
  const out = new Float32Array(rows.length * size);
  rows.forEach((r, j) => out.set(images.subarray(r * size, (r + 1) * size), j * size));
  return out;
}

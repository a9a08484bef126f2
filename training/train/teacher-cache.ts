// Exact caching of the teacher's logits. Without random erasing, a training image's augmentation is
// one of a finite set of views (crop offsets x flips: 50 for Fashion-MNIST's 2-pixel crop), and the
// teacher is a fixed function in inference mode, so its logits for a view never change. KD students
// of one seed see the same views in the same order (plan.ts), and later seeds draw many of them
// again: caching every view the teacher has seen replaces most teacher runs by a lookup.
//
// The cache is one Float32Array of [images x views x classes] plus a byte per entry, allocated only
// when it fits `maxBytes` (Fashion-MNIST: 55,000 x 50 x 10 floats, 110 MB); batches without view keys
// (erasing, evaluation sets) go straight to the teacher.
//
// With a file, the cache outlives its process: a run stopped at the end of a session, or another
// process training other students from the same teacher, reads what was computed before. The file is
// named by a key over everything its logits depend on (teacher file, engine, data, augmentation), so
// a lookup stays exact. Saving merges the file's entries first (another process may have written it)
// and replaces it atomically; two processes saving at the same instant can lose each other's newest
// entries, never correctness.
import { existsSync, readFileSync } from "node:fs";
import type { Batch } from "../data/batches.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Teacher } from "./teacher.ts";

export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;
/** Least time between two saves of a cache file while the teacher runs (it is also saved on dispose). */
export const SAVE_EVERY_MS = 5 * 60_000;

const MAGIC = "narrowdeep teacher logits v1\n";

export interface CacheStats {
  /** Images answered from the cache, and those the teacher had to run on. */
  hits: number;
  misses: number;
  /** Views read from the cache file (at opening and when merging before a save). */
  loaded: number;
}

export interface CachedTeacher extends Teacher {
  stats(): CacheStats;
  /** Writes the cache file now (when there is one and something new to write). */
  save(): void;
}

export interface CacheOptions {
  maxBytes?: number;
  /** Where the cache persists, and the key of everything its logits depend on (cacheKey in open-teacher.ts). */
  file?: { path: string; key: string };
}

interface Header {
  key: string;
  entries: number;
  classes: number;
}

/**
 * Wraps `teacher` with a cache over `images x views` keys (Batch.views), or returns null when that
 * would take more than `maxBytes`. With `file`, the entries already in the file are read now.
 */
export function cacheTeacher(
  teacher: Teacher,
  images: number,
  views: number,
  classes: number,
  options: CacheOptions = {},
): CachedTeacher | null {
  const entries = images * views;
  if (entries * classes * 4 > (options.maxBytes ?? DEFAULT_CACHE_BYTES)) return null;
  const logits = new Float32Array(entries * classes);
  const known = new Uint8Array(entries);
  const stats: CacheStats = { hits: 0, misses: 0, loaded: 0 };
  const file = options.file;
  const header: Header = { key: file?.key ?? "", entries, classes };
  let unsaved = 0;
  let lastSave = Date.now();
  const merge = () => {
    if (file) stats.loaded += mergeFile(file.path, header, known, logits);
  };
  const save = () => {
    if (!file || unsaved === 0) return;
    merge();
    writeFileAtomic(file.path, encode(header, known, logits));
    unsaved = 0;
    lastSave = Date.now();
  };
  merge();
  return {
    ...teacher,
    engine: `${teacher.engine}, cached per augmented view${file ? " (kept on disk)" : ""}`,
    stats: () => ({ ...stats }),
    save,
    async dispose() {
      save();
      await teacher.dispose();
    },
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
          : {
              images: gather(batch.images, missing, size),
              labels: Int32Array.from(missing, (i) => batch.labels[i]!),
              size: missing.length,
              views: Uint32Array.from(missing, (i) => keys[i]!),
            };
      const fresh = await teacher.logits(sub);
      missing.forEach((i, j) => {
        const row = fresh.subarray(j * classes, (j + 1) * classes);
        out.set(row, i * classes);
        logits.set(row, keys[i]! * classes);
        known[keys[i]!] = 1;
      });
      unsaved += missing.length;
      if (Date.now() - lastSave >= SAVE_EVERY_MS) save();
      return out;
    },
  };
}

/** The file's bytes: the magic line, a JSON header line, a byte per entry (known), then the logits. */
function encode(header: Header, known: Uint8Array, logits: Float32Array): Uint8Array {
  const head = Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`, "utf8");
  // The logits start at a multiple of 4, so that reading them back needs no copy.
  const pad = (4 - ((head.length + known.length) % 4)) % 4;
  const out = new Uint8Array(head.length + pad + known.length + logits.byteLength);
  out.set(head, 0);
  out.fill(0x20, head.length - 1, head.length - 1 + pad); // spaces before the header's newline
  out[head.length - 1 + pad] = 0x0a;
  out.set(known, head.length + pad);
  out.set(new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength), head.length + pad + known.length);
  return out;
}

/**
 * Copies into `known`/`logits` the entries of the file at `path` that they lack; returns how many.
 * A missing file adds nothing; a file of another key or shape is an error (its name is the key).
 */
function mergeFile(path: string, header: Header, known: Uint8Array, logits: Float32Array): number {
  if (!existsSync(path)) return 0;
  const bytes = readFileSync(path);
  const magic = bytes.subarray(0, MAGIC.length).toString("utf8");
  const end = bytes.indexOf(0x0a, MAGIC.length);
  let stored: Header;
  try {
    if (magic !== MAGIC || end < 0) throw new Error("no header");
    stored = JSON.parse(bytes.subarray(MAGIC.length, end).toString("utf8")) as Header;
  } catch {
    throw new Error(`${path}: not a teacher logits cache file (delete it to start the cache afresh)`);
  }
  const start = end + 1;
  const size = start + stored.entries + stored.entries * stored.classes * 4;
  if (
    stored.key !== header.key ||
    stored.entries !== header.entries ||
    stored.classes !== header.classes ||
    bytes.length !== size
  ) {
    throw new Error(
      `${path}: cache of another teacher or data set, or cut short (key ${stored.key}, ${stored.entries} x ${stored.classes}, ${bytes.length} bytes); delete it to start afresh`,
    );
  }
  const theirs = bytes.subarray(start, start + stored.entries);
  const offset = bytes.byteOffset + start + stored.entries;
  const count = stored.entries * stored.classes;
  // A Buffer from Node's pool may start anywhere; Float32Array needs an offset that is a multiple of 4.
  const values =
    offset % 4 === 0
      ? new Float32Array(bytes.buffer, offset, count)
      : new Float32Array(bytes.buffer.slice(offset, offset + count * 4));
  let added = 0;
  for (let e = 0; e < header.entries; e++) {
    if (theirs[e] && !known[e]) {
      logits.set(values.subarray(e * header.classes, (e + 1) * header.classes), e * header.classes);
      known[e] = 1;
      added++;
    }
  }
  return added;
}

function gather(images: Float32Array, rows: number[], size: number): Float32Array {
  const out = new Float32Array(rows.length * size);
  rows.forEach((r, j) => {
    out.set(images.subarray(r * size, (r + 1) * size), j * size);
  });
  return out;
}

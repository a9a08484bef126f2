// Any ONNX classifier as the teacher: layout, size, normalization, output and class order found from
// flags, metadata or shapes; the soft targets equal the fixture teacher's own logits computed in
// plain JS (permuted to the data set's classes); every way a file can fail the checks is refused
// with its reason, in a message of readable length; the file rewritten for the manifest.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import type { Batch } from "../../../training/data/batches.ts";
import type { ImageSet } from "../../../training/data/dataset.ts";
import { exportOnnxTeacher } from "../../../training/export/ship-onnx-teacher.ts";
import { readOnnxMetadata } from "../../../training/onnx/file.ts";
import {
  MAX_TEACHER_PIXELS,
  type OnnxTeacherOptions,
  type TeacherData,
  loadOnnxTeacher,
} from "../../../training/train/load-onnx-teacher.ts";
import { withNormalization } from "../../../training/train/open-teacher.ts";
import { type FixtureTeacher, convTeacher, gemmTeacher, twoInputModel } from "./onnx-teachers.ts";

const dir = mkdtempSync(join(tmpdir(), "nd-onnx-teacher-"));
const save = (name: string, bytes: Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};
const none: OnnxTeacherOptions = { layout: null, size: null, mean: null, std: null, output: null };
const data: TeacherData = {
  classes: ["a", "b", "c"],
  height: 4,
  width: 4,
  channels: 3,
  normalization: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] },
};

/** n NHWC images of the data's geometry, values in the data's normalization. */
function batch(n: number, constant = false): Batch {
  const size = data.height * data.width * data.channels;
  return {
    images: Float32Array.from({ length: n * size }, (_, i) =>
      constant ? [0.3, -1, 2][i % 3]! : Math.cos(i * 0.37) * 1.5,
    ),
    labels: new Int32Array(n),
    size: n,
  };
}

/** What the teacher should say: each image mapped from the data's normalization to `to`, then the fixture's logits. */
function expected(
  t: FixtureTeacher,
  b: Batch,
  to: { mean: number[]; std: number[] },
  resized?: { h: number; w: number },
): number[] {
  const size = b.images.length / b.size;
  return Array.from({ length: b.size }, (_, n) => {
    let x = Float32Array.from(
      b.images.subarray(n * size, (n + 1) * size),
      (v, i) =>
        (v * data.normalization.std[i % 3]! + data.normalization.mean[i % 3]! - to.mean[i % 3]!) / to.std[i % 3]!,
    );
    if (resized) x = Float32Array.from({ length: resized.h * resized.w * 3 }, (_, i) => x[i % 3]!); // constant images only
    return t.logits(x);
  }).flat();
}

async function soft(path: string, options: Partial<OnnxTeacherOptions>, b: Batch) {
  const teacher = await loadOnnxTeacher(path, { ...none, ...options }, data, batch(2));
  try {
    return {
      spec: teacher.spec,
      logits: [...(await withNormalization(teacher, data.normalization, teacher.spec.normalization).logits(b))],
    };
  } finally {
    await teacher.dispose();
  }
}

const close = (a: number[], b: number[]) => {
  expect(a).toHaveLength(b.length);
  a.forEach((v, i) => {
    expect(v).toBeCloseTo(b[i]!, 4);
  });
};

describe("ONNX teacher files", () => {
  it("NHWC, Flatten + Gemm, output not named logits: layout from the shape, normalization from flags", async () => {
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3 });
    const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    const b = batch(5);
    const { spec, logits } = await soft(save("gemm.onnx", t.bytes), norm, b);
    expect(spec).toMatchObject({
      input: "image",
      layout: "NHWC",
      height: 4,
      width: 4,
      output: "scores",
      probabilities: false,
    });
    close(logits, expected(t, b, norm));
  });

  it("NCHW, Conv + GlobalAveragePool, extra outputs: takes the one output with a value per class", async () => {
    const t = convTeacher({ h: 4, w: 4, c: 3, classes: 3 });
    const b = batch(3);
    const { spec, logits } = await soft(save("conv.onnx", t.bytes), {}, b);
    expect(spec).toMatchObject({ input: "pixels", layout: "NCHW", output: "class_scores" });
    expect(spec.sources.join("; ")).toMatch(/normalization: none given, so the data set's own/);
    close(logits, expected(t, b, data.normalization));
  });

  it("resizes the batch to the teacher's fixed size and reads the layout and normalization from metadata", async () => {
    const norm = { mean: [0.1, 0.2, 0.3], std: [1, 2, 3] };
    const t = gemmTeacher({
      h: 8,
      w: 8,
      c: 3,
      classes: 3,
      symbolic: true,
      metadata: { input_layout: "NHWC", normalization: JSON.stringify(norm), labels: JSON.stringify(data.classes) },
    });
    const b = batch(2, true);
    const { spec, logits } = await soft(save("meta.onnx", t.bytes), { size: { width: 8, height: 8 } }, b);
    expect(spec.sources.join("; ")).toMatch(/layout NHWC \(metadata\).*8x8 \(flag\).*normalization from its metadata/);
    close(logits, expected(t, b, norm, { h: 8, w: 8 }));
    const fixed = gemmTeacher({ h: 8, w: 8, c: 3, classes: 3 });
    const r = await soft(save("fixed8.onnx", fixed.bytes), { mean: norm.mean, std: norm.std }, b);
    expect(r.spec.sources.join("; ")).toMatch(/8x8 \(input shape\)/);
    close(r.logits, expected(fixed, b, norm, { h: 8, w: 8 }));
  });

  it("turns a softmax output into log-probabilities, logits up to a constant per image", async () => {
    const raw = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3 });
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, softmax: true, output: "probs" });
    const b = batch(4);
    const { spec, logits } = await soft(save("softmax.onnx", t.bytes), {}, b);
    expect(spec.probabilities).toBe(true);
    const want = expected(raw, b, data.normalization);
    for (let n = 0; n < 4; n++) {
      const d = logits[n * 3]! - want[n * 3]!;
      close(
        logits.slice(n * 3, n * 3 + 3),
        want.slice(n * 3, n * 3 + 3).map((v) => v + d),
      );
    }
  });

  it("refuses what cannot be a teacher of this data, saying why", async () => {
    const load = (name: string, bytes: Uint8Array, o: Partial<OnnxTeacherOptions> = {}) =>
      loadOnnxTeacher(save(name, bytes), { ...none, ...o }, data, batch(2));
    await expect(load("junk.onnx", new TextEncoder().encode("not a model"))).rejects.toThrow(
      /junk\.onnx: onnxruntime-node cannot load it as a model/,
    );
    await expect(load("two.onnx", twoInputModel())).rejects.toThrow(
      /takes 2 inputs \(a, b\); a teacher takes one image tensor/,
    );
    await expect(load("classes.onnx", gemmTeacher({ h: 4, w: 4, c: 3, classes: 10 }).bytes)).rejects.toThrow(
      /its output "scores" is \[2, 10\] for a batch of 2; the data set has 3 classes/,
    );
    await expect(load("grey.onnx", gemmTeacher({ h: 4, w: 4, c: 1, classes: 3 }).bytes)).rejects.toThrow(
      /it takes 1 channels; the data has 3 \(set --channels 1\)/,
    );
    await expect(
      load("labels.onnx", gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, metadata: { labels: '["c","b","d"]' } }).bytes),
    ).rejects.toThrow(
      /labels\.onnx: its metadata: its classes are not the data set's: the data set's "a" match none of its labels, and its "d" match no class/,
    );
    await expect(load("ambiguous.onnx", convTeacher({ h: 4, w: 4, c: 3, classes: 5 }).bytes)).rejects.toThrow(
      /cannot tell which of its outputs \(embedding \[batch, 5\].*class_scores \[batch, 5\]\) holds the logits; pass --teacher-output/,
    );
    await expect(
      load("conv3.onnx", convTeacher({ h: 4, w: 4, c: 3, classes: 3 }).bytes, { output: "embedding" }),
    ).rejects.toThrow(/output "embedding" is \[2, 5\]/);
    await expect(
      load("conv3b.onnx", convTeacher({ h: 4, w: 4, c: 3, classes: 3 }).bytes, { output: "nope" }),
    ).rejects.toThrow(/no output "nope" \(outputs: embedding, feature_map, class_scores\)/);
    await expect(load("sym.onnx", gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, symbolic: true }).bytes)).rejects.toThrow(
      /cannot tell whether input "image" \[N, H, W, C\] is NCHW or NHWC; pass --teacher-layout/,
    );
    await expect(loadOnnxTeacher(join(dir, "absent.onnx"), none, data, batch(2))).rejects.toThrow(
      /absent\.onnx: cannot read the teacher \(ENOENT\)/,
    );
  });

  it("caps the declared input size unless --teacher-input-size names it, and says the size and the cap", async () => {
    // A 1x1 convolution and a global pool: a tiny file that declares 8000x8000 images.
    const huge = save("huge.onnx", convTeacher({ h: 8000, w: 8000, c: 3, classes: 3 }).bytes);
    const started = Date.now();
    await expect(loadOnnxTeacher(huge, none, data, batch(2))).rejects.toThrow(
      /huge\.onnx: its input is 8000x8000 \(input shape\): 64,000,000 pixels, 768 MB an image as float32.*the cap is 1,048,576 pixels \(1024x1024\)\. Pass --teacher-input-size 8000x8000 to run it at that size anyway/,
    );
    expect(Date.now() - started).toBeLessThan(5000); // refused before any batch is fed
    const symbolic = save(
      "symbolic.onnx",
      gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, symbolic: true, metadata: { input_layout: "NHWC" } }).bytes,
    );
    const big = { ...data, height: 1100, width: 1000 };
    await expect(loadOnnxTeacher(symbolic, none, big, batch(1))).rejects.toThrow(
      /its input is 1000x1100 \(the data's size\): 1,100,000 pixels/,
    );
    // Named by the flag, a size over the cap runs (here a little over it, on one image).
    expect(1000 * 1100).toBeGreaterThan(MAX_TEACHER_PIXELS);
    const over = convTeacher({ h: 1100, w: 1000, c: 3, classes: 3 });
    const teacher = await loadOnnxTeacher(
      save("over.onnx", over.bytes),
      { ...none, size: { width: 1000, height: 1100 } },
      data,
      batch(1, true),
    );
    expect(teacher.spec.sources.join("; ")).toMatch(/input "pixels" 1000x1100 \(flag\)/);
    await teacher.dispose();
  });

  it("cuts what it echoes from the file to a few hundred characters (a 20 MB label list)", async () => {
    const labels = JSON.stringify(Array.from({ length: 1_000_000 }, (_, i) => `label-${String(i).padStart(9, "0")}`));
    expect(labels.length).toBeGreaterThan(18_000_000);
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, metadata: { labels } });
    const error = await loadOnnxTeacher(save("labels20mb.onnx", t.bytes), none, data, batch(2)).then(
      () => null,
      (err: Error) => err,
    );
    expect(error?.message).toMatch(
      /its metadata: it names 1000000 classes \("label-000000000", "label-000000001", .*\.\.\. \(\d+ more characters\)\) and the data set has 3 \("a", "b", "c"\)/,
    );
    expect(error!.message.length).toBeLessThan(1000);
    const names = Array.from({ length: 3 }, (_, i) => `x${"y".repeat(100_000)}${i}`);
    const bad = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, metadata: { labels: JSON.stringify(names) } });
    const unmatched = await loadOnnxTeacher(save("long-names.onnx", bad.bytes), none, data, batch(2)).then(
      () => null,
      (err: Error) => err,
    );
    expect(unmatched?.message).toMatch(/its classes are not the data set's/);
    expect(unmatched!.message.length).toBeLessThan(1000);
  });
});

describe("an ONNX teacher's classes in another order", () => {
  /** Each row's values in `order`: the data set's class i is the teacher's output order[i]. */
  const permuted = (rows: number[], order: number[]) =>
    rows.map((_, i) => rows[i - (i % order.length) + order[i % order.length]!]!);

  it("permutes its outputs to the data set's order when its metadata names the same classes in another order, and says so", async () => {
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, metadata: { labels: '["c","a","b"]' } });
    const b = batch(4);
    const { spec, logits } = await soft(save("permuted.onnx", t.bytes), {}, b);
    expect(spec.order).toEqual([1, 2, 0]);
    expect(spec.sources.join("; ")).toMatch(
      /classes from its metadata: in another order: its outputs are permuted to the data set's class order/,
    );
    close(logits, permuted(expected(t, b, data.normalization), [1, 2, 0]));
  });

  it("takes the order from --teacher-labels, matching names that differ in case and punctuation", async () => {
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3 }); // no labels in the file
    const named: TeacherData = { ...data, classes: ["T-shirt_top", "bag", "coat"] };
    const teacher = await loadOnnxTeacher(
      save("unnamed.onnx", t.bytes),
      { ...none, labels: ["Bag", "T-shirt/top", "coat"] },
      named,
      batch(2),
    );
    expect(teacher.spec.order).toEqual([1, 0, 2]);
    expect(teacher.spec.sources.join("; ")).toMatch(
      /classes from --teacher-labels: in another order: .*; 2 matched ignoring case and all but letters and digits \("T-shirt\/top" = "T-shirt_top", "Bag" = "bag"\)/,
    );
    const b = batch(3);
    close(
      [...(await withNormalization(teacher, data.normalization, teacher.spec.normalization).logits(b))],
      permuted(expected(t, b, data.normalization), [1, 0, 2]),
    );
    await teacher.dispose();
    // Without labels the outputs are taken as they are, and the log says so.
    const plain = await soft(save("unnamed2.onnx", t.bytes), {}, b);
    expect(plain.spec.order).toBeNull();
    expect(plain.spec.sources.join("; ")).toMatch(
      /classes: it names none, so its outputs are taken to be the data set's classes in order \(pass --teacher-labels if not\)/,
    );
  });
});

describe("an ONNX teacher file into the manifest", () => {
  /** 10 test images of the data's geometry, labels 0, 1, 2, ... */
  const test: ImageSet = {
    images: Uint8Array.from({ length: 10 * 48 }, (_, i) => (i * 37) % 256),
    labels: Uint8Array.from({ length: 10 }, (_, i) => i % 3),
    count: 10,
    height: 4,
    width: 4,
    channels: 3,
  };
  const exportIt = (path: string, config = {}) =>
    exportOnnxTeacher({
      path,
      config: { dataset: "folder", ...config },
      run: { id: "run-x" },
      test,
      classes: data.classes,
      normalization: data.normalization,
      recordedPath: path,
      log: () => {},
    });

  it("adds outputs logits and probabilities to a teacher with other outputs, keeping its input, and measures it", async () => {
    const t = convTeacher({ h: 4, w: 4, c: 3, classes: 3 });
    const { entry, file } = await exportIt(save("conv-export.onnx", t.bytes));
    expect(entry).toMatchObject({
      name: "teacher",
      role: "teacher",
      architecture: "onnx",
      labels: data.classes,
      input: { name: "pixels", shape: [-1, 3, 4, 4], layout: "NCHW" },
      normalization: data.normalization,
    });
    expect(entry.outputs.map((x) => x.name)).toEqual(["logits", "probabilities"]);
    expect(entry.export!.maxAbsLogitDiff).toBeLessThan(1e-5);
    expect(entry.metrics.params).toBe(3 * 3 + 3 + 3 * 5);
    expect(readOnnxMetadata(file.bytes)).toMatchObject({
      input_layout: "NCHW",
      labels: JSON.stringify(data.classes),
      run: "run-x",
    });
    const session = await ort.InferenceSession.create(file.bytes);
    expect(session.outputNames).toEqual(["logits", "probabilities"]);
    const x = new Float32Array(2 * 48).map((_, i) => Math.sin(i));
    const out = await session.run({ pixels: new ort.Tensor("float32", x, [2, 3, 4, 4]) });
    const logits = out.logits!.data as Float32Array;
    const probs = out.probabilities!.data as Float32Array;
    for (let n = 0; n < 2; n++) {
      const nhwc = Float32Array.from({ length: 48 }, (_, i) => x[n * 48 + (i % 3) * 16 + Math.floor(i / 3)]!);
      close([...logits.subarray(n * 3, n * 3 + 3)], t.logits(nhwc));
      const e = [...logits.subarray(n * 3, n * 3 + 3)].map(Math.exp);
      close(
        [...probs.subarray(n * 3, n * 3 + 3)],
        e.map((v) => v / e.reduce((s, u) => s + u, 0)),
      );
    }
    await session.release();
    // Top-1 on the 10 images, measured on the file itself, equals the fixture's own.
    const table = data.normalization;
    let right = 0;
    for (let n = 0; n < 10; n++) {
      const img = Float32Array.from(
        test.images.subarray(n * 48, (n + 1) * 48),
        (v, i) => (v / 255 - table.mean[i % 3]!) / table.std[i % 3]!,
      );
      const l = t.logits(img);
      if (l.indexOf(Math.max(...l)) === test.labels[n]) right++;
    }
    expect(entry.metrics.accuracy!.top1).toBeCloseTo(right / 10, 10);
  });

  it("keeps a softmax teacher's probabilities and takes their logs as logits; moves a tensor that only shares a name out of the way", async () => {
    const t = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, softmax: true, output: "probabilities" });
    const { entry, file } = await exportIt(save("softmax-export.onnx", t.bytes));
    expect(entry.input.layout).toBe("NHWC");
    const session = await ort.InferenceSession.create(file.bytes);
    const out = await session.run({ image: new ort.Tensor("float32", new Float32Array(48).fill(0.2), [1, 4, 4, 3]) });
    const probs = [...(out.probabilities!.data as Float32Array)];
    close([...(out.logits!.data as Float32Array)], probs.map(Math.log));
    await session.release();
    // Its Gemm's output is called "logits", but the file answers only probabilities ("probs").
    const clash = gemmTeacher({ h: 4, w: 4, c: 3, classes: 3, softmax: true, output: "probs", raw: "logits" });
    const moved = await exportIt(save("clash.onnx", clash.bytes));
    const answers = await run(moved.file.bytes, "image", [1, 4, 4, 3]);
    close(answers.logits, answers.probabilities.map(Math.log));
    close(answers.probabilities, softmax(clash.logits(new Float32Array(48).fill(0.2))));
  });

  it("takes a file that already answers logits and probabilities (their softmax) as it is", async () => {
    const t = gemmTeacher({
      h: 4,
      w: 4,
      c: 3,
      classes: 3,
      softmax: true,
      output: "probabilities",
      raw: "logits",
      exposeRaw: true,
    });
    const { entry, file } = await exportIt(save("both.onnx", t.bytes));
    expect(entry.export!.maxAbsLogitDiff).toBe(0);
    const before = await ort.InferenceSession.create(t.bytes);
    const after = await ort.InferenceSession.create(file.bytes);
    expect(after.outputNames).toEqual(["logits", "probabilities"]);
    const x = new Float32Array(48).map((_, i) => Math.cos(i));
    const [a, b] = [
      await before.run({ image: new ort.Tensor("float32", x, [1, 4, 4, 3]) }),
      await after.run({ image: new ort.Tensor("float32", x, [1, 4, 4, 3]) }),
    ];
    expect([...(b.logits!.data as Float32Array)]).toEqual([...(a.logits!.data as Float32Array)]);
    expect([...(b.probabilities!.data as Float32Array)]).toEqual([...(a.probabilities!.data as Float32Array)]);
    await Promise.all([before.release(), after.release()]);
    // Nothing added to the graph: the same nodes, only the metadata differs.
    expect(readOnnxMetadata(file.bytes)).toMatchObject({ labels: JSON.stringify(data.classes), input_layout: "NHWC" });
    expect(file.bytes.length).toBeLessThan(t.bytes.length + 400);
  });

  it("writes a teacher with permuted classes with its outputs in the data set's order, and measures it so", async () => {
    const t = gemmTeacher({
      h: 4,
      w: 4,
      c: 3,
      classes: 3,
      softmax: true,
      output: "probabilities",
      raw: "logits",
      exposeRaw: true,
      metadata: { labels: '["b","c","a"]' },
    });
    const lines: string[] = [];
    const { entry, file } = await exportOnnxTeacher({
      path: save("permuted-export.onnx", t.bytes),
      config: { dataset: "folder" },
      run: { id: "run-p" },
      test,
      classes: data.classes,
      normalization: data.normalization,
      recordedPath: "p",
      log: (l) => lines.push(l),
    });
    expect(lines.join("\n")).toMatch(
      /with outputs logits and probabilities, its classes permuted to the data set's order/,
    );
    expect(readOnnxMetadata(file.bytes).labels).toBe(JSON.stringify(data.classes));
    const x = new Float32Array(48).map((_, i) => Math.sin(i * 0.7));
    const { logits, probabilities } = await run(file.bytes, "image", [1, 4, 4, 3], x);
    const raw = t.logits(x); // in the file's order b, c, a
    close(logits, [raw[2]!, raw[0]!, raw[1]!]);
    close(probabilities, softmax(logits));
    // Its accuracy is that of the mapped logits on the test images.
    let right = 0;
    for (let n = 0; n < 10; n++) {
      const img = Float32Array.from(
        test.images.subarray(n * 48, (n + 1) * 48),
        (v, i) => (v / 255 - data.normalization.mean[i % 3]!) / data.normalization.std[i % 3]!,
      );
      const l = t.logits(img);
      const mapped = [l[2]!, l[0]!, l[1]!];
      if (mapped.indexOf(Math.max(...mapped)) === test.labels[n]) right++;
    }
    expect(entry.metrics.accuracy!.top1).toBeCloseTo(right / 10, 10);
  });
});

/** A file's logits and probabilities for one image (default: all 0.2). */
async function run(
  bytes: Uint8Array,
  input: string,
  dims: number[],
  x = new Float32Array(dims.reduce((a, d) => a * d, 1)).fill(0.2),
) {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ [input]: new ort.Tensor("float32", x, dims) });
    return {
      logits: [...(out.logits!.data as Float32Array)],
      probabilities: [...(out.probabilities!.data as Float32Array)],
    };
  } finally {
    await session.release();
  }
}

function softmax(z: number[]): number[] {
  const e = z.map((v) => Math.exp(v - Math.max(...z)));
  return e.map((v) => v / e.reduce((s, u) => s + u, 0));
}

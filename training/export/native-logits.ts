// A child process for runtimes.ts: the logits of a model in onnxruntime-node's default session,
// run where the parent puts it (under an emulated CPU). Files in, file out:
//   node --import tsx training/export/native-logits.ts MODEL.onnx INPUT.f32 OUTPUT.f32 N C H W
// INPUT holds N images as float32 NCHW; OUTPUT gets the logits, float32 [N, classes].
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { INPUT_NAME, OUTPUT_NAMES } from "../model/to-onnx.ts";

async function main([model, input, output, ...dims]: string[]): Promise<void> {
  const [n, c, h, w] = dims.map(Number);
  if (!model || !input || !output || [n, c, h, w].some((d) => !Number.isInteger(d) || d! < 1))
    throw new Error("usage: native-logits.ts MODEL INPUT OUTPUT N C H W");
  const bytes = readFileSync(input);
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (x.length !== n! * c! * h! * w!) throw new Error(`${input} holds ${x.length} floats, not ${n}x${c}x${h}x${w}`);
  const session = await ort.InferenceSession.create(readFileSync(model), {
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  });
  const size = c! * h! * w!;
  const chunks: Float32Array[] = [];
  for (let i = 0; i < n!; i += 256) {
    const m = Math.min(256, n! - i);
    const out = await session.run(
      { [INPUT_NAME]: new ort.Tensor("float32", x.subarray(i * size, (i + m) * size), [m, c!, h!, w!]) },
      [OUTPUT_NAMES[0]],
    );
    chunks.push(out[OUTPUT_NAMES[0]]!.data as Float32Array);
  }
  await session.release();
  writeFileSync(output, Buffer.concat(chunks.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength))));
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`native-logits: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

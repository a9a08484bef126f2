// An ONNX file made elsewhere, read and changed as a protobuf message (export/onnx.proto): its
// metadata_props (onnxruntime-node does not expose them), and the two outputs the manifest, the
// Worker and the teacher host expect ("logits" and "probabilities", [N, classes]) added to it. The
// message is changed in place, so everything else in the file (value infos, functions, opsets,
// producer) is written back as it was read.
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { int, node, valueInfo } from "../export/proto.ts";

let modelProto: protobuf.Type | undefined;
function modelType(): protobuf.Type {
  modelProto ??= protobuf.loadSync(fileURLToPath(new URL("../export/onnx.proto", import.meta.url))).lookupType("onnx.ModelProto");
  return modelProto;
}

/** protobufjs gives int64 fields as Long objects when long.js is installed, else as numbers. */
type Int64 = number | { toNumber(): number };
const toNumber = (v: Int64 | undefined) => (typeof v === "object" ? v.toNumber() : (v ?? 0));

/** The fields of onnx.ModelProto read or changed here. */
interface Graph {
  node: { input?: string[]; output?: string[] }[];
  input?: { name: string }[];
  output?: { name: string }[];
  initializer?: { name: string; dims?: Int64[] }[];
}
interface Model {
  graph?: Graph;
  metadataProps?: { key: string; value: string }[];
  opsetImport?: { domain?: string; version?: Int64 }[];
}

function decode(bytes: Uint8Array): Model {
  try {
    return modelType().decode(bytes) as unknown as Model;
  } catch (err) {
    throw new Error(`not an ONNX model: ${(err as Error).message}`);
  }
}

export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  return Object.fromEntries((decode(bytes).metadataProps ?? []).map((p) => [p.key, p.value]));
}

export interface ManifestOutputs {
  /** The output holding the logits (or, with `fromProbabilities`, a softmax's probabilities). */
  output: string;
  classes: number;
  /** What "probabilities" is made with: softmax (one class per image) or sigmoid (multi-label). */
  activation: "softmax" | "sigmoid";
  /** The output is already a softmax's probabilities: logits are their logs, probabilities themselves. */
  fromProbabilities: boolean;
  /** Set in metadata_props (replacing keys of the same name). */
  metadata: Record<string, string>;
}

/** The model with outputs "logits" and "probabilities" only (other outputs dropped), and the metadata. */
export function withManifestOutputs(bytes: Uint8Array, o: ManifestOutputs): Uint8Array {
  const model = decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error("not an ONNX model: no graph");
  const used = new Set<string>([...graph.node.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]), ...(graph.input ?? []).map((i) => i.name), ...(graph.initializer ?? []).map((i) => i.name)]);
  const free = (name: string) => {
    if (used.has(name)) throw new Error(`it already has a tensor named "${name}" that is not the ${name} the manifest means; rename it`);
  };
  const added = [];
  if (o.output !== "logits") {
    free("logits");
    added.push(node(o.fromProbabilities ? "Log" : "Identity", [o.output], ["logits"]));
  }
  if (o.fromProbabilities && o.activation === "softmax") {
    if (o.output !== "probabilities") {
      free("probabilities");
      added.push(node("Identity", [o.output], ["probabilities"]));
    }
  } else {
    free("probabilities");
    added.push(o.activation === "sigmoid" ? node("Sigmoid", ["logits"], ["probabilities"]) : node("Softmax", ["logits"], ["probabilities"], [int("axis", 1)]));
  }
  graph.node.push(...added);
  graph.output = ["logits", "probabilities"].map((name) => valueInfo(name, ["N", o.classes]));
  model.metadataProps = [...(model.metadataProps ?? []).filter((p) => !Object.hasOwn(o.metadata, p.key)), ...Object.entries(o.metadata).map(([key, value]) => ({ key, value }))];
  return modelType().encode(model as unknown as protobuf.Message).finish();
}

/** The ONNX operator set a model imports and how many values its initializers hold (its parameters). */
export function onnxFacts(bytes: Uint8Array): { opset: number; params: number } {
  const model = decode(bytes);
  const opset = toNumber(model.opsetImport?.find((o) => !o.domain)?.version);
  const params = (model.graph?.initializer ?? []).reduce((n, t) => n + (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1), 0);
  return { opset, params };
}

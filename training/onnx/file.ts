// An ONNX file made elsewhere, read and changed as a protobuf message (onnx.proto beside this file): its
// metadata_props (onnxruntime-node does not expose them), and the two outputs the manifest, the
// Worker and the teacher host expect ("logits" and "probabilities", [N, classes]) added to it. The
// message is changed in place, so everything else in the file (value infos, functions, opsets,
// producer) is written back as it was read.
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { type NodeProto, int, int64Tensor, node, valueInfo } from "./proto.ts";
import { excerpt } from "../io/excerpt.ts";

/** The outputs the manifest's consumers read, in this order. */
const OUTPUT_NAMES = ["logits", "probabilities"] as const;

let modelProto: protobuf.Type | undefined;
function modelType(): protobuf.Type {
  modelProto ??= protobuf
    .loadSync(fileURLToPath(new URL("./onnx.proto", import.meta.url)))
    .lookupType("onnx.ModelProto");
  return modelProto;
}

/** protobufjs gives int64 fields as Long objects when long.js is installed, else as numbers. */
type Int64 = number | { toNumber(): number };
const toNumber = (v: Int64 | undefined) => (typeof v === "object" ? v.toNumber() : (v ?? 0));

/** The fields of onnx.ModelProto read or changed here. */
interface Named {
  name: string;
}
interface Node {
  opType?: string;
  input?: string[];
  output?: string[];
  attribute?: { name?: string; i?: Int64; g?: Graph; graphs?: Graph[] }[];
}
interface Graph {
  node: Node[];
  input?: Named[];
  output?: Named[];
  valueInfo?: Named[];
  initializer?: (Named & { dims?: Int64[] })[];
  sparseInitializer?: { values?: Named }[];
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
    throw new Error(`not an ONNX model: ${excerpt((err as Error).message)}`);
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
  /** order[i]: the output's column of the data set's class i (a Gather puts them in that order); null: as they are. */
  order: number[] | null;
  /** Set in metadata_props (replacing keys of the same name). */
  metadata: Record<string, string>;
}

/** Every tensor name of a graph and the graphs inside its nodes' attributes (If, Loop, Scan bodies). */
function tensorNames(graph: Graph, into = new Set<string>()): Set<string> {
  for (const n of graph.node) {
    for (const name of [...(n.input ?? []), ...(n.output ?? [])]) into.add(name);
    for (const a of n.attribute ?? [])
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) tensorNames(g, into);
  }
  for (const v of [
    ...(graph.input ?? []),
    ...(graph.output ?? []),
    ...(graph.valueInfo ?? []),
    ...(graph.initializer ?? []),
  ])
    into.add(v.name);
  for (const s of graph.sparseInitializer ?? []) if (s.values) into.add(s.values.name);
  return into;
}

/** Renames a tensor wherever the graph, or a graph inside it, refers to it. */
function renameTensor(graph: Graph, from: string, to: string): void {
  const swap = (names?: string[]) => names?.map((n) => (n === from ? to : n));
  for (const n of graph.node) {
    n.input = swap(n.input);
    n.output = swap(n.output);
    for (const a of n.attribute ?? [])
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) renameTensor(g, from, to);
  }
  for (const v of [...(graph.output ?? []), ...(graph.valueInfo ?? []), ...(graph.initializer ?? [])])
    if (v.name === from) v.name = to;
  for (const s of graph.sparseInitializer ?? []) if (s.values?.name === from) s.values.name = to;
}

/** The graph computes `probabilities` as the activation of `logits` over the classes (as this project's exporter writes it). */
function computesProbabilities(graph: Graph, activation: ManifestOutputs["activation"]): boolean {
  const op = activation === "softmax" ? "Softmax" : "Sigmoid";
  return graph.node.some((n) => {
    if (n.opType !== op || n.input?.length !== 1 || n.input[0] !== "logits" || n.output?.[0] !== "probabilities")
      return false;
    if (op === "Sigmoid") return true;
    const axis = n.attribute?.find((a) => a.name === "axis");
    return axis === undefined || [1, -1].includes(toNumber(axis.i));
  });
}

/**
 * The model with outputs "logits" and "probabilities" only (other outputs dropped), and the metadata.
 * A file that already answers them, as every file this project exports does, keeps them as they are;
 * a tensor of the file that only shares a name with them is renamed out of the way.
 */
export function withManifestOutputs(bytes: Uint8Array, o: ManifestOutputs): Uint8Array {
  const model = decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error("not an ONNX model: no graph");
  for (const name of OUTPUT_NAMES) {
    if ((graph.input ?? []).some((i) => i.name === name))
      throw new Error(`its input is named "${name}", the name of an output the manifest means; rename the input`);
  }
  const used = tensorNames(graph);
  const fresh = (base: string) => {
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
  const keepLogits = o.output === "logits" && !o.fromProbabilities && o.order === null;
  const keepProbabilities =
    o.order === null &&
    (o.fromProbabilities
      ? o.activation === "softmax" && o.output === "probabilities"
      : keepLogits && computesProbabilities(graph, o.activation));
  let source = o.output;
  for (const [name, keep] of [
    ["logits", keepLogits],
    ["probabilities", keepProbabilities],
  ] as const) {
    if (keep || !used.has(name)) continue;
    const moved = fresh(`${name}_of_the_file`);
    renameTensor(graph, name, moved);
    if (source === name) source = moved;
  }

  const added: NodeProto[] = [];
  let order: string | undefined;
  if (o.order) {
    order = fresh("class_order");
    graph.initializer = [...(graph.initializer ?? []), int64Tensor(order, o.order) as unknown as Named];
  }
  const gather = (from: string, to: string) => node("Gather", [from, order!], [to], [int("axis", 1)]);
  if (!keepLogits) {
    const logs = o.fromProbabilities ? (o.order ? fresh("log_probabilities") : "logits") : source;
    if (o.fromProbabilities) added.push(node("Log", [source], [logs]));
    if (o.order) added.push(gather(logs, "logits"));
    else if (logs !== "logits") added.push(node("Identity", [logs], ["logits"]));
  }
  if (!keepProbabilities) {
    if (o.fromProbabilities && o.activation === "softmax")
      added.push(o.order ? gather(source, "probabilities") : node("Identity", [source], ["probabilities"]));
    else
      added.push(
        o.activation === "sigmoid"
          ? node("Sigmoid", ["logits"], ["probabilities"])
          : node("Softmax", ["logits"], ["probabilities"], [int("axis", 1)]),
      );
  }
  graph.node.push(...added);
  graph.output = OUTPUT_NAMES.map((name) => valueInfo(name, ["N", o.classes]));
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => !Object.hasOwn(o.metadata, p.key)),
    ...Object.entries(o.metadata).map(([key, value]) => ({ key, value })),
  ];
  return modelType()
    .encode(model as unknown as protobuf.Message)
    .finish();
}

/** The ONNX operator set a model imports and how many values its initializers hold (its parameters). */
export function onnxFacts(bytes: Uint8Array): { opset: number; params: number } {
  const model = decode(bytes);
  const opset = toNumber(model.opsetImport?.find((o) => !o.domain)?.version);
  const params = (model.graph?.initializer ?? []).reduce(
    (n, t) => n + (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1),
    0,
  );
  return { opset, params };
}

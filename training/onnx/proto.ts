// The ONNX schema (onnx.proto beside this file) through protobufjs, and builders for the messages the
// project writes: nodes, attributes, initializers, value infos and whole models. Used by the graph
// encoder (model/to-onnx.ts), by export/ and by the training engine's native convolutions.
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT
const INT64 = 7;
/** onnx.TensorProto.DataType of the integer tensors a quantized model holds. */
export const INT_TYPES = { uint8: 2, int8: 3, int32: 6 } as const;
export type IntType = keyof typeof INT_TYPES;
const ATTR = { INT: 2, STRING: 3, INTS: 7 } as const; // onnx.AttributeProto.AttributeType

export interface NodeProto {
  name?: string;
  opType: string;
  /** The operator set the op is from; the default ("") is ONNX's own. */
  domain?: string;
  input: string[];
  output: string[];
  attribute: object[];
}
export type TensorProto = ReturnType<typeof floatTensor>;

let modelProto: protobuf.Type | undefined;
function modelType(): protobuf.Type {
  modelProto ??= protobuf
    .loadSync(fileURLToPath(new URL("./onnx.proto", import.meta.url)))
    .lookupType("onnx.ModelProto");
  return modelProto;
}

/** The lowest IR version each opset range came with (onnx/docs/Versioning.md), for the widest reader support. */
export function irVersionFor(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 17) return 8;
  if (opset <= 20) return 9;
  return 10;
}

export const ints = (name: string, values: number[]) => ({ name, type: ATTR.INTS, ints: values });
export const int = (name: string, value: number) => ({ name, type: ATTR.INT, i: value });
export const str = (name: string, value: string) => ({ name, type: ATTR.STRING, s: new TextEncoder().encode(value) });
export const node = (
  opType: string,
  input: string[],
  output: string[],
  attribute: object[] = [],
  domain = "",
): NodeProto => ({ opType, input, output, attribute, ...(domain ? { domain } : {}) });

export function floatTensor(name: string, dims: number[], data: Float32Array) {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return { name, dims, dataType: FLOAT, rawData: bytes };
}

/** An int8, uint8 or int32 tensor as little-endian raw data; values must already be in the type's range. */
export function intTensor(name: string, dims: number[], type: IntType, values: ArrayLike<number>) {
  const width = type === "int32" ? 4 : 1;
  const bytes = new Uint8Array(values.length * width);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    if (type === "int32") view.setInt32(i * 4, values[i]!, true);
    else if (type === "int8") view.setInt8(i, values[i]!);
    else view.setUint8(i, values[i]!);
  }
  return { name, dims, dataType: INT_TYPES[type], rawData: bytes };
}

export function int64Tensor(name: string, values: number[]) {
  return { name, dims: [values.length], dataType: INT64, int64Data: values };
}

/** A float tensor's type and shape; a string dimension is symbolic; no dims: shape unknown. */
export function valueInfo(name: string, dims?: (number | string)[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        ...(dims
          ? { shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) } }
          : {}),
      },
    },
  };
}

export interface ModelParts {
  opset: number;
  /** Versions of the other operator sets the nodes use, by domain. */
  domains?: Record<string, number>;
  nodes: NodeProto[];
  initializers?: object[];
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  name?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export function encodeModel({
  opset,
  domains = {},
  nodes,
  initializers = [],
  inputs,
  outputs,
  name = "narrowdeep",
  docString = "",
  metadata = {},
}: ModelParts): Uint8Array {
  const Model = modelType();
  const message = Model.fromObject({
    irVersion: irVersionFor(opset),
    producerName: "narrowdeep",
    producerVersion: "1",
    docString,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    opsetImport: [
      { domain: "", version: opset },
      ...Object.entries(domains).map(([domain, version]) => ({ domain, version })),
    ],
    graph: { name, node: nodes, initializer: initializers, input: inputs, output: outputs },
  });
  return Model.encode(message).finish();
}

/** An initializer as read back from a file: raw little-endian bytes or typed repeated fields. */
export interface DecodedTensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData?: number[];
}

/** A model read back from its bytes, in the parts encodeModel takes (so it can be changed and re-encoded). */
export interface DecodedModel extends ModelParts {
  initializers: DecodedTensor[];
}

/** What protobufjs' toObject gives for the fields of a model that decodeModel reads. */
interface ModelObject {
  opsetImport: { domain?: string; version: number }[];
  metadataProps: { key: string; value: string }[];
  docString?: string;
  graph?: {
    name?: string;
    node: NodeProto[];
    initializer: DecodedTensor[];
    input: ModelParts["inputs"];
    output: ModelParts["outputs"];
  };
}

/** Reads ONNX bytes into the parts encodeModel writes, so a model can be changed and written again. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  const Model = modelType();
  let m: ModelObject;
  try {
    m = Model.toObject(Model.decode(bytes), { longs: Number, arrays: true, defaults: false }) as ModelObject;
  } catch (err) {
    throw new Error(`not an ONNX model: ${(err as Error).message}`);
  }
  const onnxOpset = m.opsetImport.find((o) => !o.domain)?.version;
  if (!m.graph || onnxOpset === undefined) throw new Error("not an ONNX model: no graph or no ONNX operator set");
  const g = m.graph;
  return {
    opset: onnxOpset,
    domains: Object.fromEntries(m.opsetImport.filter((o) => o.domain).map((o) => [o.domain!, o.version])),
    // Repeated fields toObject leaves out when empty.
    nodes: g.node.map((n) => ({ ...n, input: n.input ?? [], output: n.output ?? [], attribute: n.attribute ?? [] })),
    initializers: g.initializer.map((t) => ({ ...t, dims: t.dims ?? [] })),
    inputs: g.input,
    outputs: g.output,
    name: g.name,
    docString: m.docString ?? "",
    metadata: Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value])),
  };
}

/** The values of a float initializer (raw little-endian data or float_data). */
export function floatValues(t: DecodedTensor): Float32Array {
  if (t.dataType !== FLOAT) throw new Error(`initializer "${t.name}" has data type ${t.dataType}, not float`);
  const count = t.dims.reduce((a, b) => a * b, 1);
  const values = t.rawData?.length ? new Float32Array(count) : Float32Array.from(t.floatData ?? []);
  if (t.rawData?.length) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
  }
  if (values.length !== count)
    throw new Error(
      `initializer "${t.name}" holds ${values.length} values, its dims [${t.dims.join(", ")}] need ${count}`,
    );
  return values;
}

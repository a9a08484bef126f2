// The ONNX schema (onnx.proto beside this file) through protobufjs, and builders for the messages the
// project writes: nodes, attributes, initializers, value infos and whole models. Used by the exporter
// (onnx.ts) and by the training engine's native convolutions (engine/native-conv.ts).
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT
const INT64 = 7;
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
  modelProto ??= protobuf.loadSync(fileURLToPath(new URL("./onnx.proto", import.meta.url))).lookupType("onnx.ModelProto");
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
export const node = (opType: string, input: string[], output: string[], attribute: object[] = [], domain = ""): NodeProto => ({ opType, input, output, attribute, ...(domain ? { domain } : {}) });

export function floatTensor(name: string, dims: number[], data: Float32Array) {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return { name, dims, dataType: FLOAT, rawData: bytes };
}

export function int64Tensor(name: string, values: number[]) {
  return { name, dims: [values.length], dataType: INT64, int64Data: values };
}

/** A float tensor's type and shape; a string dimension is symbolic. */
export function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) },
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

export function encodeModel({ opset, domains = {}, nodes, initializers = [], inputs, outputs, name = "narrowdeep", docString = "", metadata = {} }: ModelParts): Uint8Array {
  const Model = modelType();
  const message = Model.fromObject({
    irVersion: irVersionFor(opset),
    producerName: "narrowdeep",
    producerVersion: "1",
    docString,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    opsetImport: [{ domain: "", version: opset }, ...Object.entries(domains).map(([domain, version]) => ({ domain, version }))],
    graph: { name, node: nodes, initializer: initializers, input: inputs, output: outputs },
  });
  return Model.encode(message).finish();
}

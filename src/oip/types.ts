// Open Inference Protocol (KServe v2) REST shapes, as Triton speaks them.
// https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/

export type Parameters = Record<string, string | number | boolean>;

export interface TensorMetadata {
  name: string;
  datatype: string;
  /** -1 marks a variable dimension (the batch). */
  shape: number[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ModelReady {
  name: string;
  ready: boolean;
}

export interface ResponseOutput {
  name: string;
  shape: number[];
  /** BYTES for the classification extension's strings. */
  datatype: "FP32" | "BYTES";
  /** Absent when the tensor travels in the binary section. */
  data?: number[] | string[];
  parameters?: Parameters;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Parameters;
  outputs: ResponseOutput[];
}

/** Triton's binary tensor data extension: the JSON header's length when a binary section follows. */
export const HEADER_LENGTH = "Inference-Header-Content-Length";

/** ONNX Runtime's platform name in Triton, so clients that check it see what they expect. */
export const PLATFORM = "onnxruntime_onnx";

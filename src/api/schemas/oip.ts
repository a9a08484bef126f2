// The Open Inference Protocol's shapes (KServe v2, as Triton speaks them), as served under /v2.
// They describe; they do not parse: infer bodies go through the hand-written tensor parser
// (oip/request.ts), which reads the data without building an object per number.
import * as z from "zod";

const Parameters = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const Shape = z.array(z.int()).describe("-1 marks the batch dimension");

export const ServerMetadata = z.looseObject({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export const Live = z.looseObject({ live: z.boolean() });
export const Ready = z.looseObject({ ready: z.boolean() });
export const ModelReady = z.looseObject({ name: z.string(), ready: z.boolean() });

const TensorMetadata = z.looseObject({ name: z.string(), datatype: z.string(), shape: Shape });
export const ModelMetadata = z.looseObject({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(TensorMetadata),
  outputs: z.array(TensorMetadata),
});

const ConfigTensor = z.looseObject({
  name: z.string(),
  data_type: z.string(),
  dims: z.array(z.int()),
  format: z.string().optional(),
});
export const ModelConfig = z
  .looseObject({
    name: z.string(),
    platform: z.string(),
    backend: z.string(),
    version_policy: z.looseObject({ specific: z.looseObject({ versions: z.array(z.string()) }) }),
    max_batch_size: z.int().min(0),
    input: z.array(ConfigTensor),
    output: z.array(ConfigTensor),
  })
  .describe("Triton's model configuration; with batching on, dims leave out the batch dimension");

export const InferRequest = z.object({
  id: z.string().optional(),
  parameters: Parameters.optional().describe('"binary_data_output": true asks for every output in the binary section'),
  inputs: z
    .array(
      z.object({
        name: z.string(),
        shape: z.array(z.int().min(1)),
        datatype: z.literal("FP32"),
        data: z
          .array(z.union([z.number(), z.array(z.unknown())]))
          .optional()
          .describe("row-major, flat or nested; absent when the tensor is in the binary section"),
        parameters: z
          .object({ binary_data_size: z.int().min(0).optional() })
          .catchall(z.unknown())
          .optional(),
      }),
    )
    .min(1),
  outputs: z
    .array(
      z.object({
        name: z.string(),
        parameters: z
          .object({ binary_data: z.boolean().optional(), classification: z.int().min(1).optional() })
          .catchall(z.unknown())
          .optional(),
      }),
    )
    .optional()
    .describe("which outputs, in which order; all of them when absent"),
});

export const InferResponse = z.looseObject({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().optional(),
  parameters: Parameters.optional(),
  outputs: z.array(
    z.looseObject({
      name: z.string(),
      shape: z.array(z.int()),
      datatype: z.enum(["FP32", "BYTES"]),
      data: z
        .union([z.array(z.number()), z.array(z.string())])
        .optional()
        .describe("absent when the tensor travels in the binary section"),
      parameters: Parameters.optional(),
    }),
  ),
});

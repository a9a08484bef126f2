// The answers of /v1/classify, /v1/models/{name}/classify and /v1/compare.
import * as z from "zod";

const ModelRef = z.looseObject({ name: z.string(), version: z.string() });
export const ImageInfo = z.looseObject({
  format: z.enum(["png", "jpeg"]),
  width: z.int().min(1),
  height: z.int().min(1),
});
const Prediction = z.looseObject({ label: z.string(), index: z.int().min(0), probability: z.number().min(0).max(1) });

export const Classification = z.looseObject({
  model: ModelRef,
  image: ImageInfo,
  multiLabel: z.literal(true).optional().describe("a multi-label model: each label present on its own"),
  threshold: z.number().min(0).max(1).optional(),
  predictions: z.array(Prediction).describe("most probable first"),
});

const ArmAnswer = z.looseObject({ model: ModelRef, latencyMs: z.number().min(0), predictions: z.array(Prediction) });
const TeacherFault = z.looseObject({
  model: ModelRef,
  latencyMs: z.number().min(0),
  fault: z.string(),
  error: z.string(),
});

export const Comparison = z.looseObject({
  image: ImageInfo,
  student: ArmAnswer,
  teacher: z.union([ArmAnswer, TeacherFault]).describe("the teacher's answer, or why it gave none"),
  agree: z.boolean().nullable().describe("top-1 agreement; null when the teacher failed"),
  latencyRatio: z.number().nullable().describe("student over teacher latency"),
});

/** The query of the classify routes. */
export const ClassifyQuery = {
  k: z
    .string()
    .regex(/^\d{1,6}$/)
    .optional()
    .describe("how many labels (default 5; a multi-label model: all)"),
  threshold: z
    .string()
    .regex(/^\d*\.?\d+$/)
    .optional()
    .describe("least probability, 0 to 1 (multi-label default 0.5)"),
};

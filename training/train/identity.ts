// The fields that say which model a sub-run trains, declared once: what the loop is asked to train
// (loop.ts' TrainSpec), what its checkpoint records (checkpoint.ts' CheckpointMeta) and what the run
// report lists (report.ts' ModelReport) all carry them.

export interface ModelIdentity {
  /** Sub-run name, e.g. "teacher" or "narrow-deep-kd". */
  name: string;
  role: "teacher" | "student";
  /** ARCHITECTURES key the graph was built from, and its width scale. */
  architecture: string;
  widthScale: number;
  /** Loss registry name ("ce", "kd", ...) and its options. */
  loss: { name: string; options: Record<string, unknown> };
}

// Checks a run's distillation methods against the loss registry before the run directory is made,
// so a typo or a method that does not fit the data is refused with the flag or field to change.
// (Separate from plan.ts, which stays free of tfjs for --describe and --help.)
import { type DistillConfig, ConfigError } from "../config/schema.ts";
import { datasetEntry } from "../data/index.ts";
import { lossMisfit } from "../losses/fit.ts";
import { LOSSES, createLoss } from "../losses/index.ts";
import { isOnnxFile } from "./open-teacher.ts";
import { methods } from "./plan.ts";

export function checkMethods(config: DistillConfig, teacher?: string): void {
  const names = config.loss ?? ["kd"];
  if (names.length === 0) throw new ConfigError("loss must name at least one distillation method");
  const repeated = names.filter((n, i) => names.indexOf(n) !== i);
  if (repeated.length) throw new ConfigError(`loss lists ${repeated.join(", ")} twice`);
  const multiLabel = Boolean(datasetEntry(config.dataset).multiLabel);
  for (const { name, options } of methods(config)) {
    if (!Object.hasOwn(LOSSES, name))
      throw new ConfigError(`loss: unknown method "${name}" (known: ${Object.keys(LOSSES).join(", ")})`);
    if (name === "ce" || name === "bce")
      throw new ConfigError(
        `loss: ${name} trains on the labels alone: that is the baseline, which every run trains (<student>-baseline)`,
      );
    let loss: ReturnType<typeof createLoss>;
    try {
      loss = createLoss(name, options);
    } catch (err) {
      throw new ConfigError(`lossOptions: ${(err as Error).message}`);
    }
    // Every run has the teacher's logits (trained first, or given); its features only from a checkpoint.
    const misfit = lossMisfit(loss, {
      dataset: config.dataset,
      multiLabel,
      logitsTeacher: true,
      featureTeacher: !(teacher && isOnnxFile(teacher)),
    });
    if (misfit) throw new ConfigError(`loss: ${misfit}`);
  }
  const stray = Object.keys(config.lossOptions ?? {}).filter((n) => n === "kd" || !names.includes(n));
  if (stray.length)
    throw new ConfigError(
      `lossOptions: ${stray.join(", ")} ${stray.includes("kd") ? "(kd takes --temperature and --alpha) " : ""}is not among the methods of --loss (${names.join(", ")})`,
    );
}

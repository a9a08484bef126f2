// The loss registry: a distillation method is one file exporting a LossFactory, plus one line here.
import { ce } from "./ce.ts";
import { kd } from "./kd.ts";
import type { Loss, LossFactory } from "./loss.ts";

export type { Loss, LossFactory, LossInputs } from "./loss.ts";

export const LOSSES: Record<string, LossFactory> = {
  ce,
  kd,
};

export function createLoss(name: string, options: Record<string, unknown> = {}): Loss {
  const factory = LOSSES[name];
  if (!factory) throw new Error(`unknown loss "${name}" (known: ${Object.keys(LOSSES).join(", ")})`);
  return factory(options);
}

// The loss registry: a distillation method is one file exporting a LossFactory, plus one line here.
import { at } from "./at.ts";
import { bce } from "./bce.ts";
import { ce } from "./ce.ts";
import { dkd } from "./dkd.ts";
import { kd } from "./kd.ts";
import { mlkd } from "./mlkd.ts";
import type { Loss, LossFactory } from "./loss.ts";

export type { Loss, LossFactory, LossInputs } from "./loss.ts";

export const LOSSES: Record<string, LossFactory> = {
  ce,
  kd,
  dkd,
  at,
  bce,
  mlkd,
};

export function createLoss(name: string, options: Record<string, unknown> = {}): Loss {
  const factory = LOSSES[name];
  if (!factory) throw new Error(`unknown loss "${name}" (known: ${Object.keys(LOSSES).join(", ")})`);
  return factory(options);
}

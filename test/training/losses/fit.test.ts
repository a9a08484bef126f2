// lossMisfit: the one place that says whether a loss fits the data and the teacher at hand.
import { describe, expect, it } from "vitest";
import { lossMisfit } from "../../../training/losses/fit.ts";
import { createLoss } from "../../../training/losses/index.ts";

const everything = { dataset: "fashion-mnist", multiLabel: false, logitsTeacher: true, featureTeacher: true };

describe("lossMisfit", () => {
  it("accepts each single-label loss with a teacher that gives everything", () => {
    for (const name of ["ce", "kd", "dkd", "at"]) expect(lossMisfit(createLoss(name), everything)).toBeNull();
    expect(lossMisfit(createLoss("mlkd"), { ...everything, dataset: "voc", multiLabel: true })).toBeNull();
  });

  it("refuses a loss for the other kind of data, naming the method that fits", () => {
    expect(lossMisfit(createLoss("kd"), { ...everything, dataset: "voc", multiLabel: true })).toBe(
      "kd is for single-label data, and voc is multi-label (its method: mlkd)",
    );
    expect(lossMisfit(createLoss("mlkd"), everything)).toBe(
      "mlkd is for multi-label data, and fashion-mnist is single-label",
    );
  });

  it("refuses a distillation loss without the teacher's logits, and a feature loss without its intermediate tensors", () => {
    expect(lossMisfit(createLoss("kd"), { ...everything, logitsTeacher: false })).toBe("kd needs a teacher");
    expect(lossMisfit(createLoss("ce"), { ...everything, logitsTeacher: false, featureTeacher: false })).toBeNull();
    expect(lossMisfit(createLoss("at"), { ...everything, featureTeacher: false })).toMatch(
      /^at compares the teacher's intermediate tensors/,
    );
  });
});

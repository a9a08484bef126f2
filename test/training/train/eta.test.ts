// The whole run's ETA: every epoch left, at the rate measured for its kind of sub-run, else its
// role's, else the other role's scaled by the stated throughput; unknown before anything is measured.
import { describe, expect, it } from "vitest";
import { RunEta, subRunKind } from "../../../training/train/eta.ts";

const prior = { teacher: 50, student: 200 };

describe("run ETA", () => {
  it("adds every epoch left at its kind's measured rate", () => {
    const eta = new RunEta(
      [
        { name: "teacher", kind: "teacher x1 ce", role: "teacher", epochs: 4, done: 4 },
        { name: "wide-kd", kind: "wide x1 kd", role: "student", epochs: 3, done: 1 },
        { name: "wide-baseline", kind: "wide x1 ce", role: "student", epochs: 3, done: 0 },
      ],
      prior,
    );
    expect(eta.remaining()).toEqual({ seconds: Infinity, epochs: 5, subRuns: 2 });
    eta.observe("teacher x1 ce", "teacher", 400);
    // Students not measured yet: the teacher's 400 s an epoch at 50 img/s is 100 s at 200 img/s.
    expect(eta.remaining()).toEqual({ seconds: 500, epochs: 5, subRuns: 2 });
    eta.observe("wide x1 kd", "student", 60);
    eta.progress("wide-kd", 2.5);
    // wide-kd: 0.5 epoch at 60 s; wide-baseline (not measured): the students' mean, 60 s.
    expect(eta.remaining()).toEqual({ seconds: 0.5 * 60 + 3 * 60, epochs: 3.5, subRuns: 2 });
    eta.observe("wide x1 ce", "student", 40);
    expect(eta.remaining().seconds).toBeCloseTo(30 + 120, 10);
    eta.progress("wide-kd", 3);
    eta.progress("wide-baseline", 3);
    expect(eta.remaining()).toEqual({ seconds: 0, epochs: 0, subRuns: 0 });
  });

  it("ignores rates that are not rates, and names kinds by architecture, width and loss", () => {
    const eta = new RunEta([{ name: "t", kind: "k", role: "teacher", epochs: 1, done: 0 }], prior);
    eta.observe("k", "teacher", Infinity);
    eta.observe("k", "teacher", 0);
    expect(eta.remaining().seconds).toBe(Infinity);
    expect(subRunKind({ architecture: "narrow-deep", widthScale: 0.5, loss: { name: "kd" } })).toBe(
      "narrow-deep x0.5 kd",
    );
  });
});

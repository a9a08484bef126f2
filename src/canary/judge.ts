// A cron tick's verdict on the current step, from the window's figures. A check needs at least
// minSamples of its evidence: the student's error rate and p99 its runs on the split, agreement and
// teacher faults the paired requests. Any breached check rolls back (every breach is named), even
// when another check lacks evidence (a student failing every request gets no pairs: shadows follow
// answers); otherwise too few pairs hold the step; otherwise the next step, or completion after the
// last.
import type { CanarySettings } from "./settings.ts";
import type { CanaryFigures } from "./state.ts";

export type Verdict =
  | { action: "hold"; reason: string }
  | { action: "rollback"; reason: string; breaches: string[] }
  | { action: "promote"; reason: string; percentTo: number }
  | { action: "complete"; reason: string };

const round = (x: number) => Number(x.toPrecision(4));

/** The step after `percent`: the smallest step above it (the steps may have changed since it was set). */
export const nextStep = (steps: readonly number[], percent: number): number | undefined =>
  steps.find((s) => s > percent);

export function judge(f: CanaryFigures, settings: CanarySettings, percent: number): Verdict {
  const runsEnough = f.studentRuns >= settings.minSamples;
  const pairsEnough = f.pairs >= settings.minSamples;
  const breaches: string[] = [];
  if (pairsEnough && f.teacherFaultRate !== null && f.teacherFaultRate > settings.maxTeacherFaultRate) {
    breaches.push(
      `teacher faults on ${round(f.teacherFaultRate)} of the pairs (${f.teacherFaults} of ${f.pairs}), above ${settings.maxTeacherFaultRate}: agreement cannot be judged`,
    );
  }
  if (runsEnough && f.errorRate !== null && f.errorRate > settings.maxErrorRate) {
    breaches.push(
      `student error rate ${round(f.errorRate)} (${f.studentErrors} of ${f.studentRuns}) above ${settings.maxErrorRate}`,
    );
  }
  if (pairsEnough && f.agreement !== null && f.agreement < settings.minAgreement) {
    breaches.push(`agreement ${round(f.agreement)} over ${f.comparedPairs} pairs below ${settings.minAgreement}`);
  }
  if (runsEnough && f.p99Ms !== null && f.p99Ms > settings.maxP99Ms) {
    breaches.push(`student p99 ${round(f.p99Ms)} ms above ${settings.maxP99Ms} ms`);
  }
  if (breaches.length > 0) return { action: "rollback", reason: breaches.join("; "), breaches };
  if (!pairsEnough)
    return {
      action: "hold",
      reason: `too few samples: ${f.pairs} paired requests in the window, ${settings.minSamples} needed`,
    };
  if (f.agreement === null)
    return { action: "hold", reason: "no pair where both the student and the teacher answered" };
  const healthy = `agreement ${round(f.agreement)} over ${f.comparedPairs} pairs, p99 ${f.p99Ms === null ? "n/a" : `${round(f.p99Ms)} ms`}, error rate ${round(f.errorRate ?? 0)}, teacher faults ${round(f.teacherFaultRate ?? 0)}`;
  const next = nextStep(settings.steps, percent);
  if (next === undefined) return { action: "complete", reason: `held at the last step (${percent}%): ${healthy}` };
  return { action: "promote", reason: `${percent}% -> ${next}%: ${healthy}`, percentTo: next };
}

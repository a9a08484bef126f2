// The presets' expected times come from the stated throughput, and that throughput is what the
// committed runs measured: the full preset's figure reproduces their reports.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MEASURED_THROUGHPUT, PRESETS } from "../../../training/config/presets.ts";
import { expectedSeconds } from "../../../training/train/plan.ts";
import type { RunReport } from "../../../training/train/report.ts";

const report = (run: string) =>
  JSON.parse(readFileSync(new URL(`../../../models/runs/${run}/report.json`, import.meta.url), "utf8")) as RunReport;
const full = PRESETS.full!;
const trainImages = 60_000 - full.valSize;

describe("preset times", () => {
  it("reproduce the committed full-preset reports within 1%", () => {
    const teacherSeconds = report("fmnist-teacher").computeSeconds;
    const students = report("fmnist-students").models.filter((m) => m.role === "student");
    expect(students).toHaveLength(18);
    const studentSeconds = students.reduce((s, m) => s + m.wallSeconds, 0);
    const teacherOnly = expectedSeconds({ ...full, students: [full.students[0]!], loss: [], seeds: 1 }, trainImages, {
      teacher: MEASURED_THROUGHPUT.teacher,
      student: Infinity,
    });
    expect(teacherOnly / teacherSeconds).toBeGreaterThan(0.99);
    expect(teacherOnly / teacherSeconds).toBeLessThan(1.01);
    const all = expectedSeconds(full, trainImages, MEASURED_THROUGHPUT);
    expect(all / (teacherSeconds + studentSeconds)).toBeGreaterThan(0.99);
    expect(all / (teacherSeconds + studentSeconds)).toBeLessThan(1.01);
    // The students' report counts the teacher it distilled from too: 31.9 h is the whole preset.
    expect(report("fmnist-students").computeSeconds / 3600).toBeCloseTo(31.9, 1);
    expect(all / 3600).toBeCloseTo(31.9, 1);
  });

  it("scale with epochs, seeds and images", () => {
    const base = expectedSeconds(full, trainImages, MEASURED_THROUGHPUT);
    const teacher = (full.teacherEpochs * (trainImages - (trainImages % full.batchSize))) / MEASURED_THROUGHPUT.teacher;
    expect(expectedSeconds({ ...full, seeds: 6 }, trainImages, MEASURED_THROUGHPUT) - teacher).toBeCloseTo(
      2 * (base - teacher),
      6,
    );
    expect(expectedSeconds(full, trainImages / 2, MEASURED_THROUGHPUT)).toBeLessThan(base / 1.9);
  });
});

// The cost formula (src/measurements/cost.ts) on figures worked out by hand.
import { describe, expect, it } from "vitest";
import { costReport, type Prices } from "../../src/measurements/cost.ts";

// Round prices so the expected figures can be checked on paper.
const prices: Prices = {
  workersUsdPerMillionRequests: 0.5,
  workersUsdPerMillionCpuMs: 0.02,
  teacherUsdPerGpuHour: 3.6,
  teacherRequestsPerGpuSecond: 500,
};

describe("costReport", () => {
  it("prices each arm per 1,000 requests from the student's mean in-Worker time and the GPU's throughput", () => {
    // 4 student runs took 20 ms in all: 5 ms a run.
    const cost = costReport(
      prices,
      { studentPercent: 100, shadowPercent: 0 },
      { requests: 4, studentRuns: 4, studentMs: 20, teacherRuns: 0 },
    );
    expect(cost.studentMsPerRun).toBe(5);
    expect(cost.teacherGpuSecondsPerRun).toBe(0.002);
    // Student: 1,000 x ($0.5 / 1e6 + 5 ms x $0.02 / 1e6) = $0.0005 + $0.0001.
    const student = cost.perThousandRequests.student!;
    expect(student.workersRequests).toBeCloseTo(0.0005, 12);
    expect(student.workersCpu).toBeCloseTo(0.0001, 12);
    expect(student.teacherGpu).toBe(0);
    expect(student.total).toBeCloseTo(0.0006, 12);
    // Teacher: $3.6 an hour is $0.001 a second; 500 requests a second: $0.000002 a request, $0.002 a thousand.
    const teacher = cost.perThousandRequests.teacher;
    expect(teacher.workersCpu).toBe(0);
    expect(teacher.teacherGpu).toBeCloseTo(0.002, 12);
    expect(teacher.total).toBeCloseTo(0.0025, 12);
    // All on the student, no shadows: the split costs what the student does.
    expect(cost.perThousandRequests.split!.total).toBeCloseTo(student.total, 12);
    expect(cost.currency).toBe("USD");
  });

  it("prices a split with shadows: the student's share, plus the teacher for the rest and for the shadowed", () => {
    // 80% to the student, a quarter of those shadowed: the teacher runs for 0.8 x 0.25 + 0.2 = 0.4 of requests.
    const cost = costReport(
      prices,
      { studentPercent: 80, shadowPercent: 25 },
      { requests: 10, studentRuns: 8, studentMs: 40, teacherRuns: 4 },
    );
    const split = cost.perThousandRequests.split!;
    expect(split.workersRequests).toBeCloseTo(0.0005, 12);
    expect(split.workersCpu).toBeCloseTo(0.8 * 0.0001, 12);
    expect(split.teacherGpu).toBeCloseTo(0.4 * 0.002, 12);
    expect(split.total).toBeCloseTo(0.0005 + 0.00008 + 0.0008, 12);
    expect(cost.split).toEqual({ studentPercent: 80, shadowPercent: 25 });
  });

  it("prices the window by the runs it holds, compare and shadow runs included", () => {
    // 10 requests; 10 student runs (each 2 ms) and 6 teacher runs (compare mode runs both).
    const cost = costReport(
      prices,
      { studentPercent: 50, shadowPercent: 0 },
      { requests: 10, studentRuns: 10, studentMs: 20, teacherRuns: 6 },
    );
    const window = cost.perThousandRequests.window!;
    expect(window.workersRequests).toBeCloseTo(0.0005, 12);
    expect(window.workersCpu).toBeCloseTo(2 * 0.00002, 12); // 1,000 x 2 ms x $0.02 / 1e6 per request
    expect(window.teacherGpu).toBeCloseTo(0.6 * 0.002, 12);
  });

  it("says what it cannot price: no student run measured, no request in the window", () => {
    const empty = costReport(
      prices,
      { studentPercent: 50, shadowPercent: 0 },
      { requests: 0, studentRuns: 0, studentMs: 0, teacherRuns: 0 },
    );
    expect(empty.studentMsPerRun).toBeNull();
    expect(empty.perThousandRequests.student).toBeNull();
    expect(empty.perThousandRequests.split).toBeNull();
    expect(empty.perThousandRequests.window).toBeNull();
    expect(empty.perThousandRequests.teacher.total).toBeCloseTo(0.0025, 12);
    // All on the teacher: the split needs no student measurement.
    const teacherOnly = costReport(
      prices,
      { studentPercent: 0, shadowPercent: 50 },
      { requests: 0, studentRuns: 0, studentMs: 0, teacherRuns: 0 },
    );
    expect(teacherOnly.perThousandRequests.split!.total).toBeCloseTo(0.0025, 12);
  });

  it("follows each price: twice the GPU-hour price, twice the teacher's GPU part; twice the throughput, half", () => {
    const measured = {
      requests: 1,
      studentRuns: 1,
      studentMs: 3,
      teacherRuns: 1,
    };
    const base = costReport(prices, { studentPercent: 100, shadowPercent: 0 }, measured).perThousandRequests;
    const dearer = costReport(
      { ...prices, teacherUsdPerGpuHour: 7.2 },
      { studentPercent: 100, shadowPercent: 0 },
      measured,
    ).perThousandRequests;
    const faster = costReport(
      { ...prices, teacherRequestsPerGpuSecond: 1000 },
      { studentPercent: 100, shadowPercent: 0 },
      measured,
    ).perThousandRequests;
    const cpu = costReport(
      { ...prices, workersUsdPerMillionCpuMs: 0.04 },
      { studentPercent: 100, shadowPercent: 0 },
      measured,
    ).perThousandRequests;
    expect(dearer.teacher.teacherGpu).toBeCloseTo(2 * base.teacher.teacherGpu, 12);
    expect(faster.teacher.teacherGpu).toBeCloseTo(base.teacher.teacherGpu / 2, 12);
    expect(cpu.student!.workersCpu).toBeCloseTo(2 * base.student!.workersCpu, 12);
    expect(cpu.teacher.total).toBeCloseTo(base.teacher.total, 12);
  });
});

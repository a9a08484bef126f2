// The circuit breaker: its states on a clock of our own, then in workerd against the teacher hosts'
// fault flags (a host answering garbage, a slow one): after K faults the student answers at once with
// X-Teacher-Fault: circuit_open, counted in the report; after the cool-down one probe goes through.
import { beforeAll, describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../src/routing/breaker.ts";
import { abApp, asAdmin, classify, hosts, migrate, png, report, row, send } from "./ab-helpers.ts";

const settings = { faults: 3, cooldownMs: 1_000 };

describe("CircuitBreaker", () => {
  it("opens after K consecutive faults, lets one probe through after the cool-down, and closes on its success", () => {
    let now = 0;
    const b = new CircuitBreaker(() => now);
    for (let i = 0; i < 2; i++) b.record(b.admit(settings) as "call", false, settings);
    b.record(b.admit(settings) as "call", true, settings); // a success resets the count
    for (let i = 0; i < 3; i++) {
      expect(b.state).toBe("closed");
      b.record(b.admit(settings) as "call", false, settings);
    }
    expect(b.state).toBe("open");
    expect(b.admit(settings)).toBe("open");
    now = 999;
    expect(b.admit(settings)).toBe("open");
    now = 1_000;
    expect(b.admit(settings)).toBe("probe");
    expect(b.state).toBe("half_open");
    expect(b.admit(settings)).toBe("open"); // one probe at a time
    b.record("probe", true, settings);
    expect(b.state).toBe("closed");
    expect(b.admit(settings)).toBe("call");
  });

  it("opens again for a whole cool-down when the probe fails", () => {
    let now = 0;
    const b = new CircuitBreaker(() => now);
    for (let i = 0; i < 3; i++) b.record(b.admit(settings) as "call", false, settings);
    now = 1_500;
    expect(b.admit(settings)).toBe("probe");
    b.record("probe", false, settings);
    expect(b.state).toBe("open");
    now = 2_400;
    expect(b.admit(settings)).toBe("open");
    now = 2_500;
    expect(b.admit(settings)).toBe("probe");
  });
});

describe("the breaker in the Worker", () => {
  const app = abApp();
  beforeAll(migrate);
  // The cool-down is read when a request is admitted, so each step names the one it needs: a long
  // one where the breaker must still be open however slow the machine, a short one (after waiting it
  // out) where it must have cooled down. Wall-clock margins alone fail on a loaded machine.
  const vars = { BREAKER_FAULTS: "2", BREAKER_COOLDOWN_MS: "60000", TEACHER_URL: hosts.garbageUrl };
  const cooled = { ...vars, BREAKER_COOLDOWN_MS: "500" };
  const forced = { "X-Force-Arm": "teacher", ...asAdmin };

  it("stops calling a failing teacher after K faults, answers with the student at once, and counts it", async () => {
    const since = Date.now();
    const faults: (string | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const { response } = await classify(app, i, forced, vars);
      expect(response.status).toBe(200);
      expect(response.headers.get("X-Arm")).toBe("student");
      faults.push(response.headers.get("X-Teacher-Fault"));
    }
    expect(faults).toEqual(["bad_response", "bad_response", "circuit_open", "circuit_open", "circuit_open"]);
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")!.faults).toEqual({ bad_response: 2, circuit_open: 3 });
    expect(r.fallbacks).toBe(5);
    // /v1/compare says so too.
    const { response } = await send(app, "/v1/compare", { method: "POST", headers: asAdmin, body: png(9) }, vars);
    expect(((await response.json()) as { teacher: { fault: string } }).teacher.fault).toBe("circuit_open");

    // After the cool-down, one probe reaches the (still failing) teacher, and the breaker opens again.
    await new Promise((r) => setTimeout(r, 550));
    expect((await classify(app, 10, forced, cooled)).response.headers.get("X-Teacher-Fault")).toBe("bad_response");
    expect((await classify(app, 11, forced, vars)).response.headers.get("X-Teacher-Fault")).toBe("circuit_open");
  });

  it("closes when the probe succeeds", async () => {
    // The slow host times out at 1 s, and answers when given 10 s.
    const slow = {
      BREAKER_FAULTS: "2",
      BREAKER_COOLDOWN_MS: "60000",
      TEACHER_URL: hosts.slowUrl,
      TEACHER_TIMEOUT_MS: "1000",
    };
    for (const fault of ["timeout", "timeout"])
      expect((await classify(app, 20, forced, slow)).response.headers.get("X-Teacher-Fault")).toBe(fault);
    const open = await classify(app, 20, forced, slow);
    expect(open.response.headers.get("X-Teacher-Fault")).toBe("circuit_open");
    // At once: no timeout is waited out while the breaker is open.
    expect(open.responseMs).toBeLessThan(1_000);
    await new Promise((r) => setTimeout(r, 350));
    const patient = { ...slow, BREAKER_COOLDOWN_MS: "300", TEACHER_TIMEOUT_MS: "10000" };
    const probe = await classify(app, 21, forced, patient);
    expect(probe.response.headers.get("X-Arm")).toBe("teacher");
    const after = await classify(app, 22, forced, patient);
    expect(after.response.headers.get("X-Arm")).toBe("teacher");
  });

  it("keeps one breaker per teacher: a healthy teacher is not held back by a failing one", async () => {
    // The garbage host's breaker has cooled down by now: its probe fails and it opens again.
    expect((await classify(app, 30, forced, cooled)).response.headers.get("X-Teacher-Fault")).toBe("bad_response");
    expect((await classify(app, 31, forced, vars)).response.headers.get("X-Teacher-Fault")).toBe("circuit_open");
    expect((await classify(app, 32, forced, { ...vars, TEACHER_URL: hosts.url })).response.headers.get("X-Arm")).toBe(
      "teacher",
    );
  });
});

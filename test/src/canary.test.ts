// The canary controller in workerd: real traffic through the app (the split, shadows to the real
// teacher hosts, compare and forced requests) writes real rows to D1, and the Worker's scheduled
// handler, on the canary's cron, judges each step. Promotion through every step; rollback on low
// agreement, high latency, teacher faults and student errors; too few samples hold; pause, resume,
// stop; settings through PATCH /v1/config; the decisions' figures against the report's.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { CanarySettings } from "../../src/canary/settings.ts";
import type { CanaryDecision } from "../../src/canary/state.ts";
import worker from "../../src/index.ts";
import { buildReport } from "../../src/measurements/report.ts";
import { ModelStore } from "../../src/models/store.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import { applySettingsPatch } from "../../src/canary/settings-write.ts";
import { DEFAULT_CRONS } from "../../src/config/worker-config.ts";
import { clientBucket, DEFAULT_EXPERIMENT } from "../../src/routing/split.ts";
import type { AbBindings } from "../../src/routing/setup.ts";
import { PER_CLIENT } from "../../src/canary/figures.ts";
import { type App, abApp, asAdmin, asClient, classify, force, hosts, migrate, png, send } from "./ab-helpers.ts";
import { entryOf, fixtureFiles, fixtures } from "./helpers.ts";

const app = abApp();
beforeAll(migrate);

interface Canary {
  status: string;
  model: string | null;
  version: string | null;
  percent: number;
  step: { index: number | null; of: number };
  settings: CanarySettings;
  overridden: string[];
  decisions: CanaryDecision[];
}

const json = (body: unknown) => ({
  method: "POST",
  headers: { ...asAdmin, "Content-Type": "application/json" },
  body: JSON.stringify(body),
});
async function admin<T = Canary>(path: string, init: RequestInit = { headers: asAdmin }, status = 200): Promise<T> {
  const { response } = await send(app, path, init);
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(status);
  return body as T;
}
const canary = () => admin("/v1/canary");
const act = (what: "start" | "pause" | "resume" | "stop", status = 200) =>
  admin(`/v1/canary/${what}`, { method: "POST", headers: asAdmin }, status);
const patchConfig = (body: unknown, status = 200) =>
  admin<Record<string, unknown>>("/v1/config", { ...json(body), method: "PATCH" }, status);
const studentPercent = async () =>
  (await admin<{ settings: { studentPercent: number } }>("/v1/config")).settings.studentPercent;

/** The canary's cron firing now, through the Worker's scheduled handler. */
async function tick(): Promise<CanaryDecision | undefined> {
  const before = (await canary()).decisions[0];
  await worker.scheduled!(
    createScheduledController({ scheduledTime: Date.now(), cron: DEFAULT_CRONS.canary }),
    env as never,
    createExecutionContext(),
  );
  const latest = (await canary()).decisions[0];
  // A new row, or a hold that joined the step's hold row (migration 0006).
  return latest && (latest.id !== before?.id || latest.repeats !== before.repeats) ? latest : undefined;
}

/** Client ids the split puts on the student at a share of `percent` (and on the teacher below it). */
async function clients(from: number, to: number, n: number, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const bucket = await clientBucket(`${prefix}-${i}`, DEFAULT_EXPERIMENT);
    if (bucket >= from * 100 && bucket < to * 100) out.push(`${prefix}-${i}`);
  }
  return out;
}

let seed = 1_000;
/**
 * A round of traffic as the load test mixes it: each client once through the split (every student
 * answer shadowed), plus a forced request and a compare call, which the canary must not count.
 */
async function traffic(ids: string[], vars: Partial<AbBindings> = {}, target: App = app): Promise<void> {
  for (const id of ids) await classify(target, seed++, await asClient(id), { SHADOW_PERCENT: "100", ...vars });
  await classify(target, seed++, force("student"), { SHADOW_PERCENT: "100", ...vars });
  await send(
    target,
    "/v1/compare",
    { method: "POST", headers: asAdmin, body: png(seed++) },
    { TEACHER_TIMEOUT_MS: "10000", ...vars },
  );
}

const LENIENT: Partial<CanarySettings> = {
  steps: [5, 50, 100],
  minAgreement: 0,
  maxP99Ms: 60_000,
  maxErrorRate: 0,
  maxTeacherFaultRate: 0,
  windowMinutes: 10,
  minSamples: 4,
};

/** A canary started afresh with these settings (the rest at their defaults). */
async function restart(settings: Partial<CanarySettings>): Promise<Canary> {
  const state = await canary();
  if (state.status === "running" || state.status === "paused") await act("stop");
  const reset = Object.fromEntries(
    ["steps", "minAgreement", "maxP99Ms", "maxErrorRate", "maxTeacherFaultRate", "windowMinutes", "minSamples"].map(
      (k) => [k, null],
    ),
  );
  await patchConfig({ studentPercent: null, canary: { ...reset, ...settings } });
  return act("start");
}

describe("the canary", () => {
  let low: string[]; // on the student from 5%
  let middle: string[]; // on the student from 50%
  let high: string[]; // on the teacher until 100%
  beforeAll(async () => {
    low = await clients(0, 5, 4, "low");
    middle = await clients(5, 50, 4, "middle");
    high = await clients(50, 100, 2, "high");
  });
  const armOf = async (id: string) => (await classify(app, seed++, await asClient(id))).response.headers.get("X-Arm");

  it("is off until started, and says so", async () => {
    const state = await canary();
    expect(state).toMatchObject({
      status: "off",
      model: null,
      version: null,
      percent: 0,
      step: { index: null, of: 4 },
      decisions: [],
    });
    expect(state.settings).toEqual({
      steps: [5, 25, 50, 100],
      minAgreement: 0.9,
      maxP99Ms: 250,
      maxErrorRate: 0.01,
      maxTeacherFaultRate: 0.2,
      windowMinutes: 10,
      minSamples: 100,
    });
    expect(await tick()).toBeUndefined(); // nothing to judge, nothing recorded
  });

  it("walks through every step under mixed traffic while the student holds up, then completes", async () => {
    const started = await restart(LENIENT);
    expect(started).toMatchObject({
      status: "running",
      model: "grey28",
      version: entryOf("grey28").version,
      percent: 5,
      step: { index: 1, of: 3 },
    });
    expect(started.decisions[0]).toMatchObject({ action: "start", actor: "admin", percentFrom: 0, percentTo: 5 });
    expect(await studentPercent()).toBe(5);
    expect(await armOf(middle[0]!)).toBe("teacher");

    // The first tick has no evidence yet: it holds.
    expect(await tick()).toMatchObject({
      action: "hold",
      percentFrom: 5,
      percentTo: 5,
      reason: "too few samples: 0 paired requests in the window, 4 needed",
    });

    await traffic([...low, ...middle, ...high]);
    expect(await tick()).toMatchObject({ action: "promote", actor: "cron", percentFrom: 5, percentTo: 50 });
    expect(await studentPercent()).toBe(50);
    expect(await armOf(middle[0]!)).toBe("student");
    expect(await armOf(high[0]!)).toBe("teacher");

    await traffic([...low, ...middle, ...high]);
    expect(await tick()).toMatchObject({ action: "promote", percentFrom: 50, percentTo: 100 });
    expect(await armOf(high[0]!)).toBe("student");

    await traffic([...low, ...middle, ...high]);
    expect(await tick()).toMatchObject({ action: "complete", percentFrom: 100, percentTo: 100 });
    const done = await canary();
    expect(done).toMatchObject({ status: "done", percent: 100, step: { index: 3, of: 3 } });
    expect(done.decisions.map((d) => d.action)).toEqual(["complete", "promote", "promote", "hold", "start"]);
    expect(await tick()).toBeUndefined(); // done: the cron has nothing left to do
  });

  it("judges by the same numbers the report gives for the split's student over the window", async () => {
    const decisions = (await canary()).decisions.filter((d) => d.action === "promote" || d.action === "complete");
    expect(decisions).toHaveLength(3);
    for (const d of decisions) {
      const f = d.figures!;
      expect(d.settings).toMatchObject(LENIENT);
      const student = (await buildReport(env.DB, f.since, f.until)).rows.find(
        (r) => r.arm === "student" && r.reason === "split",
      )!;
      expect(f.studentRuns).toBe(student.count);
      expect(f.errorRate).toBe(student.errorRate);
      expect(f.p99Ms).toBe(student.latencyMs.p99);
      expect(f.comparedPairs).toBe(student.agreement!.pairs);
      expect(f.agreement).toBe(student.agreement!.top1);
      expect(f.pairs).toBe(f.comparedPairs); // the teacher never failed
    }
    // Only the split's student answers count (forced and compare traffic ran in the same windows):
    // at 5% the low clients', at 50% the low and middle ones' and the unshadowed arm check's.
    const [toHundred, toFifty] = decisions.slice(1).map((d) => d.figures!);
    expect(toFifty).toMatchObject({ studentRuns: low.length, clients: low.length, pairs: low.length });
    // The arm check's request at 50% came from a middle client: one more run, no new client.
    expect(toHundred).toMatchObject({
      studentRuns: low.length + middle.length + 1,
      clients: low.length + middle.length,
      pairs: low.length + middle.length,
    });
  });

  it("holds the step while too few paired samples come in", async () => {
    await restart({ ...LENIENT, minSamples: 10 });
    await traffic(low.slice(0, 3));
    const decision = await tick();
    expect(decision).toMatchObject({
      action: "hold",
      percentFrom: 5,
      percentTo: 5,
      reason: "too few samples: 3 paired requests in the window, 10 needed",
    });
    expect(decision!.figures).toMatchObject({ pairs: 3, studentRuns: 3 });
    expect(await canary()).toMatchObject({ status: "running", percent: 5 });
    expect(await studentPercent()).toBe(5);
  });

  it("keeps one row for the holds of a step, with the latest tick's figures, and a new row after any other decision", async () => {
    await restart({ ...LENIENT, minSamples: 10 });
    const first = (await tick())!;
    expect(first).toMatchObject({ action: "hold", repeats: 1, firstAt: null, figures: { pairs: 0 } });
    await traffic(low.slice(0, 2));
    const second = (await tick())!;
    expect(second).toMatchObject({
      id: first.id,
      action: "hold",
      repeats: 2,
      firstAt: first.at,
      reason: "too few samples: 2 paired requests in the window, 10 needed",
      figures: { pairs: 2 },
    });
    expect(Date.parse(second.at)).toBeGreaterThanOrEqual(Date.parse(first.at));
    expect((await tick())!).toMatchObject({ id: first.id, repeats: 3, firstAt: first.at });
    expect((await canary()).decisions.slice(0, 2).map((d) => d.action)).toEqual(["hold", "start"]);
    // After a pause and a resume the step holds in a row of its own.
    await act("pause");
    await act("resume");
    const after = (await tick())!;
    expect(after).toMatchObject({ action: "hold", repeats: 1, firstAt: null });
    expect(after.id).toBeGreaterThan(first.id);
    expect((await canary()).decisions.slice(0, 5).map((d) => d.action)).toEqual([
      "hold",
      "resume",
      "pause",
      "hold",
      "start",
    ]);
  });

  it("does not count a shadow the client's allowance kept from the teacher, as a pair or as a fault", async () => {
    await restart(LENIENT);
    const limited = { TEACHER_RATE_LIMITER: env.TEST_TEACHER_LIMITER, SHADOW_PERCENT: "100" };
    const address = {
      "CF-Connecting-IP": `10.77.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`,
    };
    // The limiter counts in whole minutes: start the requests well inside one.
    if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 100));
    for (const id of low) await classify(app, seed++, { ...(await asClient(id)), ...address }, limited);
    const decision = (await tick())!;
    // The test limiter allows 3 teacher calls a minute per address: the fourth shadow was refused.
    expect(decision).toMatchObject({
      action: "hold",
      figures: { studentRuns: 4, pairs: env.TEST_TEACHER_LIMIT, teacherFaults: 0 },
    });
  });

  it("cannot be steered by one anonymous client: 25 noise images neither roll it back nor promote it", async () => {
    // The poisoning case: minSamples 20, every student answer shadowed, agreement wanted at 0.9, and
    // an attacker sending noise (png(seed) is noise) on the student arm, one cron tick after each try.
    await restart({ ...LENIENT, minAgreement: 0.9, minSamples: 20 });
    const noise = async (headers: () => Promise<Record<string, string>>) => {
      for (let i = 0; i < 25; i++)
        expect((await classify(app, seed++, await headers(), { SHADOW_PERCENT: "100" })).response.status).toBe(200);
      return (await tick())!;
    };
    // 1. Naming a student-bucket id in X-Client-Id: ignored, each request is a new client on the split's draw.
    const named = await noise(async () => ({ "X-Client-Id": low[0]! }));
    expect(named).toMatchObject({ action: "hold" });
    const drawn = named.figures!.pairs;
    expect(drawn).toBeLessThan(20);
    // 2. Keeping one Worker-signed cookie from the student's bucket: its first PER_CLIENT requests count.
    const kept = await noise(() => asClient(low[1]!));
    expect(kept).toMatchObject({ action: "hold", figures: { pairs: drawn + PER_CLIENT } });
    // 3. A new student-bucket cookie for every request from one address: the address is the client.
    const shopped = await clients(0, 5, 25, "shopped");
    const address = { "CF-Connecting-IP": "203.0.113.9" };
    const sybil = await noise(async () => ({ ...(await asClient(shopped.pop()!)), ...address }));
    expect(sybil).toMatchObject({
      action: "hold",
      percentFrom: 5,
      percentTo: 5,
      figures: { pairs: drawn + 2 * PER_CLIENT, clients: named.figures!.clients! + 2 },
    });
    expect(sybil.reason).toBe(`too few samples: ${drawn + 2 * PER_CLIENT} paired requests in the window, 20 needed`);
    expect(await canary()).toMatchObject({ status: "running", percent: 5 });
  });

  it("does not count forced or compared requests as the split's samples", async () => {
    await restart(LENIENT);
    for (let i = 0; i < 5; i++) await traffic([]);
    expect(await tick()).toMatchObject({ action: "hold", figures: { studentRuns: 0, pairs: 0 } });
  });

  it("rolls back to 0% on low agreement (a strict threshold), and says why", async () => {
    await restart({ ...LENIENT, minAgreement: 0.999 });
    await traffic(low);
    const decision = (await tick())!;
    expect(decision.figures!.agreement).toBeLessThan(0.999);
    expect(decision).toMatchObject({ action: "rollback", percentFrom: 5, percentTo: 0 });
    expect(decision.reason).toMatch(
      new RegExp(`^agreement [0-9.]+ over ${decision.figures!.comparedPairs} pairs below 0.999$`),
    );
    expect(await canary()).toMatchObject({ status: "rolled_back", percent: 0 });
    expect(await studentPercent()).toBe(0);
    expect(await armOf(low[0]!)).toBe("teacher");
    expect(await tick()).toBeUndefined();
  });

  it("rolls back on high latency", async () => {
    await restart({ ...LENIENT, maxP99Ms: 0.01 });
    await traffic(low);
    const decision = (await tick())!;
    expect(decision.figures!.p99Ms).toBeGreaterThan(0.01);
    expect(decision).toMatchObject({ action: "rollback", percentTo: 0 });
    expect(decision.reason).toMatch(/^student p99 [0-9.]+ ms above 0.01 ms$/);
  });

  it("rolls back on teacher faults: agreement cannot be judged", async () => {
    await restart({ ...LENIENT, maxTeacherFaultRate: 0.5 });
    await traffic(low, { TEACHER_URL: hosts.garbageUrl });
    const decision = (await tick())!;
    expect(decision.figures).toMatchObject({
      pairs: low.length,
      teacherFaults: low.length,
      teacherFaultRate: 1,
      comparedPairs: 0,
      agreement: null,
    });
    expect(decision).toMatchObject({ action: "rollback", percentTo: 0 });
    expect(decision.reason).toMatch(/^teacher faults on 1 of the pairs \(4 of 4\), above 0.5/);
  });

  it("rolls back when the student fails, although its failures bring no pairs", async () => {
    const damaged = Uint8Array.from(fixtureFiles["grey28.onnx"]!);
    damaged[damaged.length - 100] = damaged[damaged.length - 100]! ^ 0x01;
    const broken = createApp({
      store: new ModelStore(fixtures.manifest, { ...fixtureFiles, "grey28.onnx": damaged }, ortWebEngine),
      abRouting: { teachers: [hosts.entry] },
    });
    await restart({ ...LENIENT, maxErrorRate: 0.1 });
    for (const id of low) expect((await classify(broken, seed++, await asClient(id))).response.status).toBe(503);
    const decision = (await tick())!;
    expect(decision.figures).toMatchObject({
      studentRuns: low.length,
      studentErrors: low.length,
      errorRate: 1,
      pairs: 0,
    });
    expect(decision).toMatchObject({
      action: "rollback",
      percentTo: 0,
      reason: `student error rate 1 (${low.length} of ${low.length}) above 0.1`,
    });
  });

  it("pauses and resumes: no decisions while paused, the share set back and fresh evidence on resume", async () => {
    await restart(LENIENT);
    expect((await act("pause")).status).toBe("paused");
    await traffic(low);
    expect(await tick()).toBeUndefined();
    // While paused the admin may move the share; resuming sets the step's share again.
    await patchConfig({ studentPercent: 30 });
    const resumed = await act("resume");
    expect(resumed).toMatchObject({ status: "running", percent: 5 });
    expect(resumed.decisions.slice(0, 2).map((d) => [d.action, d.actor])).toEqual([
      ["resume", "admin"],
      ["pause", "admin"],
    ]);
    expect(await studentPercent()).toBe(5);
    // Traffic from before the resume is not evidence for the resumed step.
    expect(await tick()).toMatchObject({ action: "hold", figures: { pairs: 0 } });
    await traffic(low);
    expect(await tick()).toMatchObject({ action: "promote", percentTo: 50 });
  });

  it("refuses calls that do not fit its state with 409, and a manual split while it runs", async () => {
    await restart(LENIENT);
    expect((await act("start", 409)) as unknown).toEqual({
      error: "cannot start the canary: it is running at 5% (start needs off or rolled_back or done)",
    });
    expect((await act("resume", 409)) as unknown).toEqual({
      error: "cannot resume the canary: it is running at 5% (resume needs paused)",
    });
    expect(await patchConfig({ studentPercent: 80 }, 409)).toEqual({
      error: "the canary sets studentPercent while it runs (now 5%); pause or stop it first (POST /v1/canary/pause)",
    });
    // Every writer of the split goes through the same guard (the dashboard's form included).
    await expect(applySettingsPatch(env.DB, { studentPercent: 80 })).rejects.toMatchObject({ status: 409 });
    expect(await studentPercent()).toBe(5);
    // Its settings may change while it runs; they apply at the next tick.
    expect((await patchConfig({ canary: { minSamples: 7 } })).canary).toMatchObject({
      settings: { minSamples: 7 },
      overridden: expect.arrayContaining(["minSamples"]),
    });
    const stopped = await act("stop");
    expect(stopped).toMatchObject({ status: "off", percent: 5 });
    expect(stopped.decisions[0]).toMatchObject({ action: "stop", reason: "stopped at 5%; studentPercent stays at 5" });
    expect((await act("pause", 409)) as unknown).toEqual({
      error: "cannot pause the canary: it is off (pause needs running)",
    });
    expect((await patchConfig({ studentPercent: 80 })).settings).toMatchObject({ studentPercent: 80 });
  });

  it("takes its settings through PATCH /v1/config and refuses bad ones with the reason", async () => {
    const cases: [unknown, string][] = [
      [
        { canary: { steps: [50, 25] } },
        "canary.steps must be a list of 1 to 20 percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got [50,25]",
      ],
      [
        { canary: { steps: [0, 100] } },
        "canary.steps must be a list of 1 to 20 percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got [0,100]",
      ],
      [
        { canary: { steps: [] } },
        "canary.steps must be a list of 1 to 20 percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got []",
      ],
      [
        { canary: { steps: "5,25" } },
        'canary.steps must be a list of 1 to 20 percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got "5,25"',
      ],
      [{ canary: { minAgreement: 1.5 } }, "canary.minAgreement must be a number from 0 to 1, got 1.5"],
      [{ canary: { maxP99Ms: -1 } }, "canary.maxP99Ms must be a number from 0 to 60000, got -1"],
      [{ canary: { maxErrorRate: "0.1" } }, 'canary.maxErrorRate must be a number from 0 to 1, got "0.1"'],
      [{ canary: { windowMinutes: 0.5 } }, "canary.windowMinutes must be an integer from 1 to 1440, got 0.5"],
      [{ canary: { minSamples: 0 } }, "canary.minSamples must be an integer from 1 to 1000000, got 0"],
      [
        { canary: { speed: 3 } },
        'unknown canary setting "speed" (known: steps, minAgreement, maxP99Ms, maxErrorRate, maxTeacherFaultRate, windowMinutes, minSamples)',
      ],
      [
        { canary: {} },
        "canary names no setting (known: steps, minAgreement, maxP99Ms, maxErrorRate, maxTeacherFaultRate, windowMinutes, minSamples)",
      ],
      [
        { canary: [5] },
        "canary must be a JSON object of settings (known: steps, minAgreement, maxP99Ms, maxErrorRate, maxTeacherFaultRate, windowMinutes, minSamples)",
      ],
      // A bad routing setting beside a good canary one changes neither.
      [{ studentPercent: 101, canary: { minSamples: 3 } }, "studentPercent must be a number from 0 to 100, got 101"],
      [
        { split: 5 },
        'unknown setting "split" (known: studentPercent, shadowPercent, teacherTimeoutMs, breakerFaults, breakerCooldownMs, workersUsdPerMillionRequests, workersUsdPerMillionCpuMs, teacherUsdPerGpuHour, teacherRequestsPerGpuSecond, canary)',
      ],
    ];
    const before = await canary();
    for (const [body, error] of cases) expect(await patchConfig(body, 400)).toEqual({ error });
    expect((await canary()).settings).toEqual(before.settings);
    const changed = await patchConfig({ shadowPercent: 20, canary: { steps: [10, 100], windowMinutes: 30 } });
    expect(changed).toMatchObject({
      settings: { shadowPercent: 20 },
      canary: { settings: { steps: [10, 100], windowMinutes: 30 } },
    });
    expect((await canary()).step.of).toBe(2);
    const restored = await patchConfig({ shadowPercent: null, canary: { steps: null, windowMinutes: null } });
    expect(restored).toMatchObject({ canary: { settings: { steps: [5, 25, 50, 100], windowMinutes: 10 } } });
  });

  it("answers limit and authentication errors", async () => {
    expect(await admin("/v1/canary?limit=2")).toMatchObject({ decisions: [expect.anything(), expect.anything()] });
    expect(await admin("/v1/canary?limit=0", { headers: asAdmin }, 400)).toEqual({
      error: 'limit must be an integer from 1 to 1000, got "0"',
    });
    for (const [path, method] of [
      ["/v1/canary", "GET"],
      ["/v1/canary/start", "POST"],
      ["/v1/canary/pause", "POST"],
    ] as const) {
      const { response } = await send(app, path, { method });
      expect(response.status).toBe(401);
    }
  });
});

describe("the Worker's cron dispatch", () => {
  it("runs the roll-up alone on the hourly cron and refuses a cron it does not know", async () => {
    await restart(LENIENT);
    const decisions = (await canary()).decisions.length;
    await worker.scheduled!(
      createScheduledController({ scheduledTime: Date.now(), cron: DEFAULT_CRONS.rollup }),
      env as never,
      createExecutionContext(),
    );
    expect((await canary()).decisions.length).toBe(decisions);
    await expect(
      worker.scheduled!(
        createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }),
        env as never,
        createExecutionContext(),
      ),
    ).rejects.toThrow(
      'no job runs on the cron "*/5 * * * *": rollup runs on "5 * * * *" (ROLLUP_CRON), canary runs on "* * * * *" (CANARY_CRON)',
    );
    // A deployment that moves the canary's cron says so in CANARY_CRON.
    await worker.scheduled!(
      createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }),
      { ...env, CANARY_CRON: "*/5 * * * *" } as never,
      createExecutionContext(),
    );
    expect((await canary()).decisions.length).toBe(decisions + 1);
    await act("stop");
  });
});

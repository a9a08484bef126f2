// A/B routing in workerd against real teacher hosts: the split and its stickiness, the override,
// the fallback when the teacher is down, slow or answering garbage, shadow mode and /v1/compare.
import { beforeAll, describe, expect, it } from "vitest";
import { assignArm } from "../../src/routing/split.ts";
import { TIMEOUT_MS, abApp, classify, hosts, migrate, report, row, send, png } from "./ab-helpers.ts";

const app = abApp();
beforeAll(migrate);

interface Classified {
  model: { name: string; version: string };
  predictions: { label: string; index: number; probability: number }[];
}

describe("the split", () => {
  it("puts the set share of many clients on the student, from a hash of the client id", async () => {
    for (const percent of [0, 12.5, 50, 90, 100]) {
      let student = 0;
      for (let i = 0; i < 10_000; i++) if ((await assignArm(`client-${i}`, percent)).arm === "student") student++;
      expect(Math.abs(student / 10_000 - percent / 100)).toBeLessThan(0.015);
    }
  });

  it("routes requests through the app within tolerance of STUDENT_PERCENT, and the same client always to the same arm", async () => {
    const arms = new Map<string, string>();
    for (let i = 0; i < 150; i++) {
      const { response } = await classify(app, i, { "X-Client-Id": `user-${i}` }, { STUDENT_PERCENT: "30" });
      expect(response.status).toBe(200);
      const arm = response.headers.get("X-Arm")!;
      expect(["student", "teacher"]).toContain(arm);
      const body = (await response.json()) as Classified;
      expect(body.model.name).toBe(arm === "student" ? "grey28" : "teacher28");
      expect(response.headers.get("X-Model-Name")).toBe(body.model.name);
      arms.set(`user-${i}`, arm);
    }
    const share = [...arms.values()].filter((a) => a === "student").length / arms.size;
    // 150 clients at 30%: the standard error is 3.7 points; the hash makes this exact for these ids.
    expect(Math.abs(share - 0.3)).toBeLessThan(0.1);
    for (let i = 0; i < 30; i++) {
      const { response } = await classify(app, 1000 + i, { "X-Client-Id": `user-${i}` }, { STUDENT_PERCENT: "30" });
      expect(response.headers.get("X-Arm")).toBe(arms.get(`user-${i}`));
    }
  });

  it("gives a client without an id a cookie and keeps it on its arm", async () => {
    const first = await classify(app, 1);
    const cookie = first.response.headers.get("Set-Cookie")!;
    expect(cookie).toMatch(/^nd_client=[0-9a-f-]{36}; Path=\/; Max-Age=31536000; HttpOnly; SameSite=Lax$/);
    const arm = first.response.headers.get("X-Arm");
    for (let i = 0; i < 5; i++) {
      const again = await classify(app, 2 + i, { Cookie: cookie.split(";")[0]! });
      expect(again.response.headers.get("Set-Cookie")).toBeNull();
      expect(again.response.headers.get("X-Arm")).toBe(arm);
    }
  });

  it("obeys X-Force-Arm whatever the split, and refuses other values", async () => {
    const toTeacher = await classify(app, 3, { "X-Force-Arm": "teacher" }, { STUDENT_PERCENT: "100" });
    expect(toTeacher.response.headers.get("X-Arm")).toBe("teacher");
    const toStudent = await classify(app, 3, { "X-Force-Arm": "Student" }, { STUDENT_PERCENT: "0" });
    expect(toStudent.response.headers.get("X-Arm")).toBe("student");
    const bad = await classify(app, 3, { "X-Force-Arm": "both" });
    expect(bad.response.status).toBe(400);
    expect(await bad.response.json()).toEqual({ error: 'X-Force-Arm must be "student" or "teacher", got "both"' });
  });

  it("answers with the teacher's own prediction on the teacher arm", async () => {
    const { response } = await classify(app, 4, { "X-Force-Arm": "teacher" });
    const viaWorker = (await response.json()) as Classified;
    // The teacher host serves the same app, so it classifies the same image itself.
    const direct = (await (await fetch(`${hosts.url}/v1/classify`, { method: "POST", headers: { "Content-Type": "image/png" }, body: png(4) })).json()) as Classified;
    expect(direct.model.name).toBe("teacher28");
    expect(viaWorker.predictions.map((p) => p.index)).toEqual(direct.predictions.map((p) => p.index));
    viaWorker.predictions.forEach((p, i) => expect(p.probability).toBeCloseTo(direct.predictions[i]!.probability, 5));
  });
});

describe("teacher faults", () => {
  const cases = [
    { what: "down", url: hosts.downUrl, fault: "unreachable" },
    { what: "slow", url: hosts.slowUrl, fault: "timeout" },
    { what: "answering garbage", url: hosts.garbageUrl, fault: "bad_response" },
  ];
  for (const c of cases) {
    it(`lets the student answer when the teacher is ${c.what}, and records the fault`, async () => {
      const since = Date.now();
      for (let i = 0; i < 3; i++) {
        const { response, responseMs } = await classify(app, 10 + i, { "X-Force-Arm": "teacher" }, { TEACHER_URL: c.url });
        expect(response.status).toBe(200);
        expect(response.headers.get("X-Arm")).toBe("student");
        expect(response.headers.get("X-Teacher-Fault")).toBe(c.fault);
        expect(((await response.json()) as Classified).model.name).toBe("grey28");
        if (c.fault === "timeout") expect(responseMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      }
      const r = await report(app, since);
      expect(r.fallbacks).toBe(3);
      expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 3, served: 0, errors: 3, errorRate: 1, faults: { [c.fault]: 3 }, latencyMs: { p50: null } });
      expect(row(r, "student", "grey28")).toMatchObject({ count: 3, served: 3, errors: 0 });
    });
  }
});

describe("shadow mode", () => {
  it("answers from the student and sends the same image to the teacher after the response", async () => {
    const since = Date.now();
    for (let i = 0; i < 4; i++) {
      const { response } = await classify(app, 20 + i, { "X-Force-Arm": "student" }, { SHADOW_PERCENT: "100" });
      expect(response.headers.get("X-Arm")).toBe("student");
    }
    const r = await report(app, since);
    expect(r.requests).toBe(4);
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 4, served: 0, errors: 0 });
    expect(row(r, "student", "grey28")).toMatchObject({ count: 4, served: 4 });
    expect(row(r, "student", "grey28")!.agreement!.pairs).toBe(4);
  });

  it("adds nothing to the client's wait when the teacher is slow", async () => {
    const since = Date.now();
    const { response, responseMs, settledMs } = await classify(app, 30, { "X-Force-Arm": "student" }, { SHADOW_PERCENT: "100", TEACHER_URL: hosts.slowUrl });
    expect(response.status).toBe(200);
    expect(responseMs).toBeLessThan(TIMEOUT_MS / 2);
    expect(settledMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 1, faults: { timeout: 1 } });
    expect(r.fallbacks).toBe(0);
  });

  it("shadows none at 0% and only student answers", async () => {
    const since = Date.now();
    await classify(app, 31, { "X-Force-Arm": "student" }, { SHADOW_PERCENT: "0" });
    await classify(app, 32, { "X-Force-Arm": "teacher" }, { SHADOW_PERCENT: "100" });
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 1, served: 1 });
    expect(row(r, "student", "grey28")).toMatchObject({ count: 1, served: 1, agreement: { pairs: 0, top1: null } });
  });
});

describe("POST /v1/compare", () => {
  it("runs both models on the same image and says whether they agree", async () => {
    const { response } = await send(app, "/v1/compare?k=3", { method: "POST", headers: { "Content-Type": "image/png" }, body: png(40) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      student: { model: { name: string }; latencyMs: number; predictions: Classified["predictions"] };
      teacher: { model: { name: string }; latencyMs: number; predictions: Classified["predictions"] };
      agree: boolean;
      latencyRatio: number;
      image: unknown;
    };
    expect(body.image).toEqual({ format: "png", width: 28, height: 28 });
    expect(body.student.model.name).toBe("grey28");
    expect(body.teacher.model.name).toBe("teacher28");
    expect(body.student.predictions).toHaveLength(3);
    expect(body.teacher.predictions).toHaveLength(3);
    expect(body.agree).toBe(body.student.predictions[0]!.index === body.teacher.predictions[0]!.index);
    expect(body.teacher.latencyMs).toBeGreaterThan(0);
    expect(body.latencyRatio).toBeCloseTo(body.student.latencyMs / body.teacher.latencyMs, 10);
    const direct = (await (await fetch(`${hosts.url}/v1/classify?k=3`, { method: "POST", headers: { "Content-Type": "image/png" }, body: png(40) })).json()) as Classified;
    expect(body.teacher.predictions.map((p) => p.index)).toEqual(direct.predictions.map((p) => p.index));
  });

  it("still answers with the student when the teacher fails, naming the fault without internals", async () => {
    for (const [url, fault] of [
      [hosts.downUrl, "unreachable"],
      [hosts.garbageUrl, "bad_response"],
    ] as const) {
      const { response } = await send(app, "/v1/compare", { method: "POST", headers: { "Content-Type": "image/png" }, body: png(41) }, { TEACHER_URL: url });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { teacher: { fault: string; error: string }; agree: unknown; latencyRatio: unknown; student: unknown };
      expect(body.teacher.fault).toBe(fault);
      expect(body.teacher.error).not.toMatch(/127\.0\.0\.1|\/|at /);
      expect(body.agree).toBeNull();
      expect(body.latencyRatio).toBeNull();
    }
  });

  it("compares a named student, and refuses a name that is not a student", async () => {
    const named = await send(app, "/v1/compare?model=grey28", { method: "POST", body: png(42) });
    expect(named.response.status).toBe(200);
    const wrong = await send(app, "/v1/compare?model=rgb32", { method: "POST", body: png(42) });
    expect(wrong.response.status).toBe(503);
    expect(((await wrong.response.json()) as { error: string }).error).toMatch(/different labels/);
  });

  it("says what is missing when there is no teacher to compare with", async () => {
    const { response } = await send(app, "/v1/compare", { method: "POST", body: png(43) }, { TEACHER_URL: "" });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: "POST /v1/compare needs a teacher: set TEACHER_URL, with the teacher's entry in models/manifest.json" });
  });
});

describe("without a teacher", () => {
  it("serves /v1/classify from the default student alone, recording nothing", async () => {
    const since = Date.now();
    const { response } = await classify(app, 50, { "X-Force-Arm": "teacher" }, { TEACHER_URL: "" });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Arm")).toBeNull();
    expect(((await response.json()) as Classified).model.name).toBe("grey28");
    expect((await report(app, since)).requests).toBe(0);
  });

  it("names a misconfiguration instead of guessing", async () => {
    const { response } = await classify(app, 51, {}, { TEACHER_MODEL: "nope" });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: 'A/B routing is misconfigured: TEACHER_MODEL "nope" is not a teacher in models/manifest.json' });
    const bad = await classify(app, 51, {}, { STUDENT_PERCENT: "150" });
    expect(bad.response.status).toBe(503);
    expect(await bad.response.json()).toEqual({ error: "A/B routing is misconfigured: STUDENT_PERCENT must be a number from 0 to 100, got \"150\"" });
  });
});

// A/B routing in workerd against real teacher hosts: the split and its stickiness, the override,
// the fallback when the teacher is down, slow or answering garbage, shadow mode and /v1/compare.
import { beforeAll, describe, expect, it } from "vitest";
import type { AbBindings } from "../../src/routing/setup.ts";
import { assignArm } from "../../src/routing/split.ts";
import {
  TIMEOUT_MS,
  abApp,
  asAdmin,
  asClient,
  classify,
  force,
  hosts,
  migrate,
  report,
  row,
  send,
  png,
  teacherAuth,
} from "./ab-helpers.ts";

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
      for (let i = 0; i < 10_000; i++)
        if ((await assignArm(`client-${i}`, percent, "default")).arm === "student") student++;
      expect(Math.abs(student / 10_000 - percent / 100)).toBeLessThan(0.015);
    }
  });

  it("routes requests through the app within tolerance of STUDENT_PERCENT, and the same client always to the same arm", async () => {
    const arms = new Map<string, string>();
    for (let i = 0; i < 150; i++) {
      const { response } = await classify(app, i, await asClient(`user-${i}`), { STUDENT_PERCENT: "30" });
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
      const { response } = await classify(app, 1000 + i, await asClient(`user-${i}`), { STUDENT_PERCENT: "30" });
      expect(response.headers.get("X-Arm")).toBe(arms.get(`user-${i}`));
    }
  });

  it("salts the buckets with the experiment, so a new experiment draws other clients for the student", async () => {
    const students = async (experiment: string) => {
      const ids: string[] = [];
      for (let i = 0; i < 2_000; i++)
        if ((await assignArm(`client-${i}`, 50, experiment)).arm === "student") ids.push(`client-${i}`);
      return new Set(ids);
    };
    const first = await students("spring");
    expect(await students("spring")).toEqual(first);
    const next = await students("summer");
    const kept = [...next].filter((id) => first.has(id)).length / next.size;
    // Independent draws keep about half; an unsalted hash would keep them all.
    expect(kept).toBeGreaterThan(0.4);
    expect(kept).toBeLessThan(0.6);
    // And the routes use the EXPERIMENT var.
    const arms = async (experiment: string) => {
      const out: string[] = [];
      for (let i = 0; i < 12; i++)
        out.push(
          (await classify(app, i, await asClient(`client-${i}`), { EXPERIMENT: experiment })).response.headers.get(
            "X-Arm",
          )!,
        );
      return out;
    };
    const expected = async (experiment: string) =>
      Promise.all(Array.from({ length: 12 }, async (_, i) => (await assignArm(`client-${i}`, 50, experiment)).arm));
    expect(await arms("spring")).toEqual(await expected("spring"));
    expect(await arms("summer")).toEqual(await expected("summer"));
  });

  it("gives a client without an id a signed cookie and keeps it on its arm", async () => {
    const first = await classify(app, 1);
    const cookie = first.response.headers.get("Set-Cookie")!;
    // The id, a dot and its HMAC-SHA256 (base64, URL-encoded).
    expect(cookie).toMatch(
      /^nd_client=[0-9a-f-]{36}\.[A-Za-z0-9%]{44,}; Max-Age=31536000; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    const arm = first.response.headers.get("X-Arm");
    for (let i = 0; i < 5; i++) {
      const again = await classify(app, 2 + i, { Cookie: cookie.split(";")[0]! });
      expect(again.response.headers.get("Set-Cookie")).toBeNull();
      expect(again.response.headers.get("X-Arm")).toBe(arm);
    }
  });

  it("does not let an anonymous caller choose its arm: X-Client-Id is ignored, unsigned or forged cookies are replaced", async () => {
    // The attack: pick an id whose bucket is on the teacher and send it every time.
    let teacherId = "";
    for (let i = 0; !teacherId; i++)
      if ((await assignArm(`mine-${i}`, 50, "default")).arm === "teacher") teacherId = `mine-${i}`;
    const { Cookie: signed } = await asClient(teacherId);
    const signature = (cookie: string) => decodeURIComponent(cookie.slice("nd_client=".length)).split(".").pop()!;
    const mine = signature(signed);
    const flipped = `${mine.slice(0, 10)}${mine[10] === "A" ? "B" : "A"}${mine.slice(11)}`;
    const cookie = (id: string, sig: string) => ({ Cookie: `nd_client=${encodeURIComponent(`${id}.${sig}`)}` });
    const attempts: Record<string, string>[] = [
      { "X-Client-Id": teacherId },
      { Cookie: `nd_client=${teacherId}` },
      cookie(teacherId, flipped),
      cookie(teacherId, signature((await asClient("someone-else")).Cookie)),
    ];
    for (const headers of attempts) {
      const arms = new Set<string>();
      for (let i = 0; i < 16; i++) {
        const { response } = await classify(app, 40 + i, headers);
        expect(response.status).toBe(200);
        // Each request is a new client, with a cookie of its own: its arm is the split's draw.
        expect(response.headers.get("Set-Cookie")).toMatch(/^nd_client=[0-9a-f-]{36}\./);
        arms.add(response.headers.get("X-Arm")!);
      }
      expect([...arms].sort()).toEqual(["student", "teacher"]);
    }
    // The same id, signed by the Worker, is that client: always the teacher.
    for (let i = 0; i < 4; i++)
      expect(
        (await classify(app, 60 + i, { Cookie: signed, "X-Client-Id": "other" })).response.headers.get("X-Arm"),
      ).toBe("teacher");
  });

  it("lets a caller with an API key or the admin token name its client in X-Client-Id", async () => {
    const made = (await (
      await send(app, "/v1/keys", {
        method: "POST",
        headers: { ...asAdmin, "Content-Type": "application/json" },
        body: JSON.stringify({ name: "app", rights: ["compare"] }),
      })
    ).response.json()) as { key: string };
    for (const auth of [asAdmin, { Authorization: `Bearer ${made.key}` }]) {
      for (let i = 0; i < 8; i++) {
        const { response } = await classify(app, 70 + i, { ...auth, "X-Client-Id": `named-${i}` });
        expect(response.headers.get("X-Arm")).toBe((await assignArm(`named-${i}`, 50, "default")).arm);
        expect(response.headers.get("Set-Cookie")).toBeNull();
      }
    }
    // A wrong key is refused, not treated as anonymous.
    const wrong = await classify(app, 80, { Authorization: "Bearer ndk_not-a-key", "X-Client-Id": "named-0" });
    expect(wrong.response.status).toBe(401);
    expect(await wrong.response.json()).toEqual({ error: "unknown or revoked API key" });
  });

  it("obeys X-Force-Arm whatever the split, and refuses other values", async () => {
    const toTeacher = await classify(app, 3, force("teacher"), { STUDENT_PERCENT: "100" });
    expect(toTeacher.response.headers.get("X-Arm")).toBe("teacher");
    const toStudent = await classify(app, 3, force("Student"), { STUDENT_PERCENT: "0" });
    expect(toStudent.response.headers.get("X-Arm")).toBe("student");
    const bad = await classify(app, 3, force("both"));
    expect(bad.response.status).toBe(400);
    expect(await bad.response.json()).toEqual({ error: 'X-Force-Arm must be "student" or "teacher", got "both"' });
  });

  it("answers with the teacher's own prediction on the teacher arm", async () => {
    const { response } = await classify(app, 4, force("teacher"));
    const viaWorker = (await response.json()) as Classified;
    // The teacher host serves the same app, so it classifies the same image itself.
    const direct = (await (
      await fetch(`${hosts.url}/v1/classify`, {
        method: "POST",
        headers: { "Content-Type": "image/png", ...teacherAuth },
        body: png(4),
      })
    ).json()) as Classified;
    expect(direct.model.name).toBe("teacher28");
    expect(viaWorker.predictions.map((p) => p.index)).toEqual(direct.predictions.map((p) => p.index));
    viaWorker.predictions.forEach((p, i) => {
      expect(p.probability).toBeCloseTo(direct.predictions[i]!.probability, 5);
    });
  });
});

describe("the teacher link", () => {
  it("carries TEACHER_TOKEN: without it, or with another, the teacher's 401 is a fault the student covers", async () => {
    for (const vars of [{ TEACHER_TOKEN: "" }, { TEACHER_TOKEN: "A".repeat(43) }]) {
      const { response } = await classify(app, 60, force("teacher"), vars);
      expect(response.status).toBe(200);
      expect(response.headers.get("X-Arm")).toBe("student");
      expect(response.headers.get("X-Teacher-Fault")).toBe("http_error");
    }
    expect((await classify(app, 60, force("teacher"))).response.headers.get("X-Arm")).toBe("teacher");
  });

  it("carries it in TEACHER_AUTH_HEADER when the teacher's gateway wants another header", async () => {
    const { url, header } = hosts.customHeader;
    const wrongHeader = await classify(app, 61, force("teacher"), { TEACHER_URL: url });
    expect(wrongHeader.response.headers.get("X-Teacher-Fault")).toBe("http_error");
    const right = await classify(app, 61, force("teacher"), { TEACHER_URL: url, TEACHER_AUTH_HEADER: header });
    expect(right.response.headers.get("X-Arm")).toBe("teacher");
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
        const { response, responseMs } = await classify(app, 10 + i, force("teacher"), { TEACHER_URL: c.url });
        expect(response.status).toBe(200);
        expect(response.headers.get("X-Arm")).toBe("student");
        expect(response.headers.get("X-Teacher-Fault")).toBe(c.fault);
        expect(((await response.json()) as Classified).model.name).toBe("grey28");
        if (c.fault === "timeout") expect(responseMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      }
      const r = await report(app, since);
      expect(r.fallbacks).toBe(3);
      const teacher = row(r, "teacher", "teacher28", "forced")!;
      expect(teacher).toMatchObject({ count: 3, served: 0, errors: 3, errorRate: 1, faults: { [c.fault]: 3 } });
      // Failed runs count in the latencies that include failures (a timeout at the timeout), not in the others.
      expect(teacher.latencyMs).toMatchObject({ includesFailures: true, runs: 3 });
      if (c.fault === "timeout") expect(teacher.latencyMs).toMatchObject({ p50: TIMEOUT_MS, p99: TIMEOUT_MS });
      expect(teacher.successLatencyMs).toEqual({ includesFailures: false, runs: 0, p50: null, p95: null, p99: null });
      expect(row(r, "student", "grey28")).toMatchObject({ count: 3, served: 3, errors: 0 });
    });
  }
});

describe("shadow mode", () => {
  it("answers from the student and sends the same image to the teacher after the response", async () => {
    const since = Date.now();
    for (let i = 0; i < 4; i++) {
      const { response } = await classify(app, 20 + i, force("student"), { SHADOW_PERCENT: "100" });
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
    const { response, responseMs, settledMs } = await classify(app, 30, force("student"), {
      SHADOW_PERCENT: "100",
      TEACHER_URL: hosts.slowUrl,
    });
    expect(response.status).toBe(200);
    expect(responseMs).toBeLessThan(TIMEOUT_MS / 2);
    expect(settledMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 1, faults: { timeout: 1 } });
    expect(r.fallbacks).toBe(0);
  });

  it("shadows none at 0% and only student answers", async () => {
    const since = Date.now();
    await classify(app, 31, force("student"), { SHADOW_PERCENT: "0" });
    await classify(app, 32, force("teacher"), { SHADOW_PERCENT: "100" });
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 1, served: 1 });
    expect(row(r, "student", "grey28")).toMatchObject({ count: 1, served: 1, agreement: { pairs: 0, top1: null } });
  });
});

describe("POST /v1/compare", () => {
  it("runs both models on the same image and says whether they agree", async () => {
    const { response } = await send(app, "/v1/compare?k=3", {
      method: "POST",
      headers: { "Content-Type": "image/png", ...asAdmin },
      body: png(40),
    });
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
    const direct = (await (
      await fetch(`${hosts.url}/v1/classify?k=3`, {
        method: "POST",
        headers: { "Content-Type": "image/png", ...teacherAuth },
        body: png(40),
      })
    ).json()) as Classified;
    expect(body.teacher.predictions.map((p) => p.index)).toEqual(direct.predictions.map((p) => p.index));
  });

  it("still answers with the student when the teacher fails, naming the fault without internals", async () => {
    for (const [url, fault] of [
      [hosts.downUrl, "unreachable"],
      [hosts.garbageUrl, "bad_response"],
    ] as const) {
      const { response } = await send(
        app,
        "/v1/compare",
        { method: "POST", headers: { "Content-Type": "image/png", ...asAdmin }, body: png(41) },
        { TEACHER_URL: url },
      );
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        teacher: { fault: string; error: string };
        agree: unknown;
        latencyRatio: unknown;
        student: unknown;
      };
      expect(body.teacher.fault).toBe(fault);
      expect(body.teacher.error).not.toMatch(/127\.0\.0\.1|\/|at /);
      expect(body.agree).toBeNull();
      expect(body.latencyRatio).toBeNull();
    }
  });

  it("compares a named student, and refuses a name that is not a student", async () => {
    const named = await send(app, "/v1/compare?model=grey28", { method: "POST", headers: asAdmin, body: png(42) });
    expect(named.response.status).toBe(200);
    const wrong = await send(app, "/v1/compare?model=rgb32", { method: "POST", headers: asAdmin, body: png(42) });
    expect(wrong.response.status).toBe(422);
    expect(await wrong.response.json()).toEqual({
      error: 'model "rgb32" cannot be compared with the teacher "teacher28": their labels differ',
    });
  });

  it("says what is missing when there is no teacher to compare with", async () => {
    const { response } = await send(
      app,
      "/v1/compare",
      { method: "POST", headers: asAdmin, body: png(43) },
      { TEACHER_URL: "" },
    );
    expect(response.status).toBe(503);
    // The admin is told what to set; anyone else only that there is no teacher.
    expect(await response.json()).toEqual({
      error: "POST /v1/compare needs a teacher, and this server has none",
      detail: "set TEACHER_URL, with the teacher's entry in models/manifest.json",
    });
  });
});

describe("without a teacher", () => {
  it("serves /v1/classify from the default student alone, recording nothing", async () => {
    const since = Date.now();
    const { response } = await classify(app, 50, force("teacher"), { TEACHER_URL: "" });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Arm")).toBeNull();
    expect(((await response.json()) as Classified).model.name).toBe("grey28");
    expect((await report(app, since)).requests).toBe(0);
  });

  it("names a misconfiguration to the admin only, instead of guessing", async () => {
    const cases: [Partial<AbBindings>, string][] = [
      [{ TEACHER_MODEL: "nope" }, 'TEACHER_MODEL "nope" is not a teacher in models/manifest.json'],
      [{ STUDENT_PERCENT: "150" }, 'STUDENT_PERCENT must be a number from 0 to 100, got "150"'],
      [
        { TEACHER_TOKEN: "short" },
        "TEACHER_TOKEN must be at least 22 characters of A-Z a-z 0-9 . _ ~ + / - (e.g. 32 random bytes in base64url)",
      ],
    ];
    for (const [vars, detail] of cases) {
      const anonymous = await classify(app, 51, {}, vars);
      expect(anonymous.response.status).toBe(503);
      expect(await anonymous.response.json()).toEqual({ error: "A/B routing is misconfigured on this server" });
      const admin = await classify(app, 51, asAdmin, vars);
      expect(admin.response.status).toBe(503);
      expect(await admin.response.json()).toEqual({ error: "A/B routing is misconfigured on this server", detail });
    }
  });
});

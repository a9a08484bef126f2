// Who may reach the teacher, in workerd: forcing an arm and /v1/compare need the admin token or an
// API key with the right; anonymous clients reach the teacher only through the split. API keys are
// made, listed and revoked through the admin API, and D1 keeps only their SHA-256.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "../../src/access/api-keys.ts";
import { abApp, asAdmin, classify, migrate, png, report, send } from "./ab-helpers.ts";

const app = abApp();
beforeAll(migrate);

interface MadeKey {
  id: string;
  name: string;
  rights: string[];
  createdAt: string;
  revokedAt: string | null;
  key: string;
}

async function makeKey(name: string, rights: unknown): Promise<Response> {
  return (
    await send(app, "/v1/keys", {
      method: "POST",
      headers: { ...asAdmin, "Content-Type": "application/json" },
      body: JSON.stringify({ name, rights }),
    })
  ).response;
}

async function newKey(name: string, rights: string[]): Promise<MadeKey> {
  const res = await makeKey(name, rights);
  expect(res.status).toBe(201);
  return res.json();
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const compare = (headers: Record<string, string>) =>
  send(app, "/v1/compare", { method: "POST", headers, body: png(7) });

describe("anonymous clients", () => {
  it("cannot force an arm (403), and the teacher is not called", async () => {
    const since = Date.now();
    for (const arm of ["teacher", "student"]) {
      const { response } = await classify(app, 1, { "X-Force-Arm": arm });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({
        error:
          'X-Force-Arm needs an API key with the "force" right, or the admin token: send Authorization: Bearer <key>',
      });
    }
    expect((await report(app, since)).requests).toBe(0);
  });

  it("cannot use /v1/compare (403)", async () => {
    const { response } = await compare({});
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: string }).error).toMatch(
      /^POST \/v1\/compare needs an API key with the "compare" right/,
    );
  });

  it("are still routed to the teacher by the split, as configured", async () => {
    const { response } = await classify(app, 2, { "X-Client-Id": "anyone" }, { STUDENT_PERCENT: "0" });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Arm")).toBe("teacher");
  });
});

describe("API keys", () => {
  it("are made by the admin, shown once, and stored as SHA-256 only", async () => {
    const made = await newKey("ci", ["compare", "compare"]);
    expect(made).toMatchObject({ name: "ci", rights: ["compare"], revokedAt: null });
    expect(made.key).toMatch(/^ndk_[A-Za-z0-9_-]{43}$/);
    const { response } = await send(app, "/v1/keys", { headers: asAdmin });
    const listed = ((await response.json()) as { keys: Record<string, unknown>[] }).keys.find((k) => k.id === made.id)!;
    expect(listed).toEqual({
      id: made.id,
      name: "ci",
      rights: ["compare"],
      createdAt: made.createdAt,
      revokedAt: null,
    });
    const stored = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?1")
      .bind(made.id)
      .first<Record<string, unknown>>();
    expect(stored!.hash).toBe(await hashKey(made.key));
    expect(Object.values(stored!)).not.toContain(made.key);
  });

  it("grant exactly their rights", async () => {
    const comparer = await newKey("comparer", ["compare"]);
    const forcer = await newKey("forcer", ["force"]);
    expect((await compare(bearer(comparer.key))).response.status).toBe(200);
    const denied = await classify(app, 3, { "X-Force-Arm": "teacher", ...bearer(comparer.key) });
    expect(denied.response.status).toBe(403);
    expect(await denied.response.json()).toEqual({
      error: 'API key "comparer" lacks the "force" right that X-Force-Arm needs',
    });
    const forced = await classify(
      app,
      3,
      { "X-Force-Arm": "teacher", ...bearer(forcer.key) },
      { STUDENT_PERCENT: "100" },
    );
    expect(forced.response.status).toBe(200);
    expect(forced.response.headers.get("X-Arm")).toBe("teacher");
    expect((await compare(bearer(forcer.key))).response.status).toBe(403);
    // The admin token carries every right.
    expect((await compare(asAdmin)).response.status).toBe(200);
  });

  it("are refused when unknown (401) or malformed (400)", async () => {
    const unknown = await compare(bearer(`ndk_${"x".repeat(43)}`));
    expect(unknown.response.status).toBe(401);
    expect(await unknown.response.json()).toEqual({ error: "unknown or revoked API key" });
    const malformed = await compare({ Authorization: "Bearer two words" });
    expect(malformed.response.status).toBe(400);
  });

  it("stop working as soon as they are revoked", async () => {
    const key = await newKey("temporary", ["compare", "force"]);
    expect((await compare(bearer(key.key))).response.status).toBe(200);
    const revoked = await send(app, `/v1/keys/${key.id}`, { method: "DELETE", headers: asAdmin });
    expect(revoked.response.status).toBe(200);
    const body = (await revoked.response.json()) as MadeKey;
    expect(body.revokedAt).not.toBeNull();
    expect((await compare(bearer(key.key))).response.status).toBe(401);
    expect((await classify(app, 4, { "X-Force-Arm": "teacher", ...bearer(key.key) })).response.status).toBe(401);
    // Revoking again keeps the first time; an unknown id is a 404.
    const again = (await (
      await send(app, `/v1/keys/${key.id}`, { method: "DELETE", headers: asAdmin })
    ).response.json()) as MadeKey;
    expect(again.revokedAt).toBe(body.revokedAt);
    expect((await send(app, "/v1/keys/nope", { method: "DELETE", headers: asAdmin })).response.status).toBe(404);
  });

  it("are refused with the reason when the request to make one is wrong", async () => {
    const cases: [unknown, string][] = [
      [{ name: "x", rights: ["admin"] }, 'unknown right "admin" (known: force, compare)'],
      [{ name: "x", rights: [] }, 'rights must be a non-empty array of "force", "compare"'],
      [{ name: "", rights: ["force"] }, "name must be a string of 1 to 100 characters"],
      [{ name: "x", rights: ["force"], expires: 1 }, 'unknown field "expires" (known: name, rights)'],
      [[1], 'the body must be a JSON object such as {"name": "ci", "rights": ["compare"]}'],
    ];
    for (const [body, error] of cases) {
      const { response } = await send(app, "/v1/keys", {
        method: "POST",
        headers: { ...asAdmin, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error });
    }
  });
});

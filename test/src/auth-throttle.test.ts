// Guessing at secrets, on wrangler.toml's AUTH_RATE_LIMITER as Miniflare runs it (20 a minute per
// address) and the test's D1: wrong dashboard sign-ins and wrong bearer tokens (the admin token, an
// API key) answer 401 up to the allowance, the 21st wrong guess in a minute 429 with Retry-After, and
// then every credential from that address, the right one too, until the block ends; another address
// is not touched; every failure is logged with its request id.
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app.ts";
import { AUTH_PERIOD_S } from "../../src/access/auth-throttle.ts";
import { DASHBOARD_ASSETS } from "../../src/dashboard/assets.ts";
import { ADMIN_TOKEN, asAdmin, hosts, migrate, png, send } from "./ab-helpers.ts";
import { fixtureStore } from "./helpers.ts";

const app = createApp({
  store: fixtureStore(),
  abRouting: { teachers: [hosts.entry] },
  dashboard: { assets: DASHBOARD_ASSETS },
});
beforeAll(migrate);

const ALLOWANCE = 20;
const throttled = { AUTH_RATE_LIMITER: env.AUTH_RATE_LIMITER };
/** An address of its own for each test: the allowance is per address. */
const address = () => ({
  "CF-Connecting-IP": `198.51.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`,
});

let warnings: string[];
beforeEach(async () => {
  warnings = [];
  vi.spyOn(console, "warn").mockImplementation((...args: unknown[]) => void warnings.push(args.map(String).join(" ")));
  // The limiter counts in whole minutes: start the guesses well inside one.
  if (Date.now() % 60_000 > 45_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 100));
});
afterEach(() => vi.restoreAllMocks());

/** The warnings that are JSON events of one kind. */
function logged(event: string): Record<string, unknown>[] {
  const parsed = (w: string): Record<string, unknown> => {
    try {
      return JSON.parse(w) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  return warnings.map(parsed).filter((e) => e.event === event);
}

const signIn = (token: string, from: Record<string, string>) =>
  send(
    app,
    "/dashboard/sign-in",
    {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: "http://edge.test", ...from },
      body: new URLSearchParams({ token }).toString(),
      redirect: "manual",
    },
    throttled,
  );
const adminCall = (token: string, from: Record<string, string>) =>
  send(app, "/v1/report", { headers: { Authorization: `Bearer ${token}`, ...from } }, throttled);

/** Sends `guess` ALLOWANCE + 1 times; the statuses. */
async function guess(call: () => Promise<{ response: Response }>): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i <= ALLOWANCE; i++) out.push((await call()).response);
  return out;
}

describe("wrong guesses at a secret", () => {
  it("at the dashboard's sign-in: the 21st in a minute gets 429 with Retry-After, then the right token too", async () => {
    const from = address();
    const answers = await guess(() => signIn(`${ADMIN_TOKEN}-wrong`, from));
    expect(answers.map((r) => r.status)).toEqual([...new Array(ALLOWANCE).fill(401), 429]);
    const last = answers.at(-1)!;
    expect(last.headers.get("Retry-After")).toBe(String(AUTH_PERIOD_S));
    expect(await last.text()).toContain("Too many failed attempts from this address; retry in 60 s.");
    const right = (await signIn(ADMIN_TOKEN, from)).response;
    expect(right.status).toBe(429);
    expect(Number(right.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(right.headers.get("Set-Cookie")).toBeNull();
    // Another address signs in.
    expect((await signIn(ADMIN_TOKEN, address())).response.status).toBe(303);
    // Each failure is logged with its request id.
    const failures = logged("auth_failure").filter(
      (e) => e.what === "dashboard sign-in" && e.address === from["CF-Connecting-IP"],
    );
    expect(failures).toHaveLength(ALLOWANCE + 1);
    const ids = answers.map((r) => r.headers.get("X-Request-Id")!);
    expect(failures.map((e) => e.requestId)).toEqual(ids);
    expect(
      logged("auth_blocked")
        .filter((e) => e.address === from["CF-Connecting-IP"])
        .map((e) => e.requestId),
    ).toEqual([ids.at(-1)]);
  });

  it("with the admin's bearer token: 401s, then 429, then the right token is refused until the block ends", async () => {
    const from = address();
    const answers = await guess(() => adminCall("a-wrong-admin-token-of-32-characters-or-more", from));
    expect(answers.map((r) => r.status)).toEqual([...new Array(ALLOWANCE).fill(401), 429]);
    expect(await answers.at(-1)!.json()).toEqual({
      error: "too many failed attempts from this address; retry in 60 s",
    });
    expect(answers.at(-1)!.headers.get("Retry-After")).toBe("60");
    expect((await adminCall(ADMIN_TOKEN, from)).response.status).toBe(429);
    expect((await adminCall(ADMIN_TOKEN, address())).response.status).toBe(200);
    // The block lives in D1: when it has run out, the right token works again from that address.
    await env.DB.prepare("UPDATE auth_blocks SET until = ?1 WHERE address = ?2")
      .bind(Date.now() - 1, from["CF-Connecting-IP"])
      .run();
    expect((await adminCall(ADMIN_TOKEN, from)).response.status).toBe(200);
    expect(
      logged("auth_failure").filter((e) => e.what === "admin token" && e.address === from["CF-Connecting-IP"]),
    ).toHaveLength(ALLOWANCE + 1);
  });

  it("with an API key where one is taken: /v1/compare and /v1/classify count together", async () => {
    const from = address();
    const compare = () =>
      send(
        app,
        "/v1/compare",
        { method: "POST", headers: { Authorization: "Bearer ndk_guessed", ...from }, body: png(1) },
        throttled,
      );
    const classify = () =>
      send(
        app,
        "/v1/classify",
        {
          method: "POST",
          headers: { "Content-Type": "image/png", Authorization: "Bearer ndk_guessed", ...from },
          body: png(2),
        },
        throttled,
      );
    const statuses: number[] = [];
    for (let i = 0; i <= ALLOWANCE; i++) statuses.push((await (i % 2 ? compare() : classify())).response.status);
    expect(statuses).toEqual([...new Array(ALLOWANCE).fill(401), 429]);
    // Anonymous requests from the address are not credentials: they are served.
    const anonymous = await send(
      app,
      "/v1/classify",
      { method: "POST", headers: { "Content-Type": "image/png", ...from }, body: png(3) },
      throttled,
    );
    expect(anonymous.response.status).toBe(200);
  });

  it("does not count right tokens or requests without one", async () => {
    const from = address();
    for (let i = 0; i <= ALLOWANCE + 5; i++)
      expect((await send(app, "/v1/config", { headers: { ...asAdmin, ...from } }, throttled)).response.status).toBe(
        200,
      );
    for (let i = 0; i <= ALLOWANCE + 5; i++)
      expect((await send(app, "/v1/config", { headers: from }, throttled)).response.status).toBe(401);
    expect(logged("auth_failure")).toEqual([]);
  });
});

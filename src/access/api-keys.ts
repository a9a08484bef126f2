// API keys: bearer tokens that grant rights over the teacher (forcing an arm, /v1/compare) without
// the admin token. Made and revoked through the admin API (routes/keys.ts); D1 stores only the
// SHA-256 of each key, so the table leaks nothing usable, and a key is shown once, when it is made.
// Every use reads D1 (one indexed row), so a revocation takes effect at once in every isolate.
import type { D1Database } from "@cloudflare/workers-types";
import * as z from "zod";
import { firstProblem } from "../http/first-problem.ts";

/** What a key may do. */
export const RIGHTS = ["force", "compare"] as const;
export type Right = (typeof RIGHTS)[number];

export const KEY_PREFIX = "ndk_";

export interface ApiKey {
  id: string;
  name: string;
  rights: Right[];
  createdAt: string;
  revokedAt: string | null;
}

interface Row {
  id: string;
  name: string;
  rights: string;
  created_at: number;
  revoked_at: number | null;
}

export class ApiKeyError extends Error {
  override name = "ApiKeyError";
}

const toKey = (r: Row): ApiKey => ({
  id: r.id,
  name: r.name,
  rights: r.rights.split(",").filter((x): x is Right => (RIGHTS as readonly string[]).includes(x)),
  createdAt: new Date(r.created_at).toISOString(),
  revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
});

export async function hashKey(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

const nameProblem = "name must be a string of 1 to 100 characters";
const rightsProblem = `rights must be a non-empty array of ${RIGHTS.map((r) => `"${r}"`).join(", ")}`;

/** POST /v1/keys's body, {name, rights}: validated here, described in /openapi.json. */
export const NewKeyRequest = z.strictObject(
  {
    name: z
      .string({ error: nameProblem })
      .max(100, { error: nameProblem })
      .refine((name) => name.trim().length > 0, { error: nameProblem })
      .transform((name) => name.trim()),
    rights: z
      .array(
        z.enum(RIGHTS, {
          error: (issue) => `unknown right ${JSON.stringify(issue.input)?.slice(0, 40)} (known: ${RIGHTS.join(", ")})`,
        }),
        { error: rightsProblem },
      )
      .min(1, { error: rightsProblem })
      .transform((rights) => [...new Set(rights)]),
  },
  {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown field "${issue.keys[0]?.slice(0, 40)}" (known: name, rights)`
        : 'the body must be a JSON object such as {"name": "ci", "rights": ["compare"]}',
  },
);

/** Checks a request to make a key: {name, rights}. */
export function parseNewKey(body: unknown): { name: string; rights: Right[] } {
  const parsed = NewKeyRequest.safeParse(body);
  if (!parsed.success) throw new ApiKeyError(firstProblem(parsed.error));
  return parsed.data;
}

/** Makes a key; the secret is in the answer and nowhere else. */
export async function createKey(
  db: D1Database,
  request: { name: string; rights: Right[] },
  now = Date.now(),
): Promise<ApiKey & { key: string }> {
  const key = KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
  const id = crypto.randomUUID();
  await db
    .prepare("INSERT INTO api_keys (id, name, hash, rights, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
    .bind(id, request.name, await hashKey(key), request.rights.join(","), now)
    .run();
  return {
    id,
    name: request.name,
    rights: request.rights,
    createdAt: new Date(now).toISOString(),
    revokedAt: null,
    key,
  };
}

export async function listKeys(db: D1Database): Promise<ApiKey[]> {
  const { results } = await db
    .prepare("SELECT id, name, rights, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
    .all<Row>();
  return results.map(toKey);
}

/** Revokes a key; undefined when there is no such key. Revoking twice keeps the first time. */
export async function revokeKey(db: D1Database, id: string, now = Date.now()): Promise<ApiKey | undefined> {
  const row = await db
    .prepare(
      "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 RETURNING id, name, rights, created_at, revoked_at",
    )
    .bind(id, now)
    .first<Row>();
  return row ? toKey(row) : undefined;
}

/** The live key a secret belongs to, or undefined (unknown or revoked). */
export async function findKey(db: D1Database, key: string): Promise<ApiKey | undefined> {
  if (!key.startsWith(KEY_PREFIX)) return undefined;
  const row = await db
    .prepare("SELECT id, name, rights, created_at, revoked_at FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL")
    .bind(await hashKey(key))
    .first<Row>();
  return row ? toKey(row) : undefined;
}

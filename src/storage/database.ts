// The Worker's D1 database (binding DB): measurements, settings, the canary, API keys and dashboard
// sessions. Every route and job that needs it asks here, and says what it needs it for.
import type { D1Database, D1PreparedStatement } from "@cloudflare/workers-types";
import { HttpError } from "../http/errors.ts";

/** The D1 database; a 503 naming who needs it when the binding is missing. */
export function database(env: { DB?: D1Database }, user = "this route"): D1Database {
  if (!env.DB) throw new HttpError(503, `${user} needs the D1 binding DB, which is missing`);
  return env.DB;
}

/** Statements and the row type each one reads. */
export type TypedStatements<Rows extends unknown[]> = { [I in keyof Rows]: D1PreparedStatement };

/**
 * Runs read statements in one batch (one round trip, one consistent view) and answers each one's
 * rows, typed as the caller's SELECTs name them: D1's batch() types every result alike.
 */
export async function batchRows<Rows extends unknown[]>(
  db: D1Database,
  statements: TypedStatements<Rows>,
): Promise<{ [I in keyof Rows]: Rows[I][] }> {
  const results = await db.batch(statements as D1PreparedStatement[]);
  return results.map((r) => r.results) as { [I in keyof Rows]: Rows[I][] };
}

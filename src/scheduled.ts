// Which job a Cron Trigger runs, by its expression (event.cron): the measurement roll-up (hourly) and
// the canary controller (every minute). The expressions are wrangler.toml's [triggers] crons; a
// deployment that changes one there sets ROLLUP_CRON or CANARY_CRON to the same expression.
import { ConfigError } from "./config/error.ts";

export type ScheduledJob = "rollup" | "canary";

export const DEFAULT_CRONS: Record<ScheduledJob, string> = { rollup: "5 * * * *", canary: "* * * * *" };
const CRON_VARS: Record<ScheduledJob, string> = { rollup: "ROLLUP_CRON", canary: "CANARY_CRON" };

/** The jobs a trigger with this expression runs; a ConfigError when none does. */
export function jobsFor(cron: string, env: Record<string, unknown>): ScheduledJob[] {
  const crons = Object.fromEntries(
    (Object.keys(DEFAULT_CRONS) as ScheduledJob[]).map((job) => {
      const set = env[CRON_VARS[job]];
      return [job, typeof set === "string" && set.trim() !== "" ? set.trim() : DEFAULT_CRONS[job]];
    }),
  ) as Record<ScheduledJob, string>;
  const jobs = (Object.keys(crons) as ScheduledJob[]).filter((job) => crons[job] === cron.trim());
  if (jobs.length === 0) {
    throw new ConfigError(`no job runs on the cron "${cron}": ${Object.entries(crons).map(([job, c]) => `${job} runs on "${c}" (${CRON_VARS[job as ScheduledJob]})`).join(", ")}`);
  }
  return jobs;
}

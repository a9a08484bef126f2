// Which job a Cron Trigger runs, by its expression (event.cron): the measurement roll-up (hourly) and
// the canary controller (every minute). The expressions are wrangler.toml's [triggers] crons; a
// deployment that changes one there sets ROLLUP_CRON or CANARY_CRON to the same expression.
import { ConfigError } from "./config/error.ts";
import { CRON_VARS, type ScheduledJob } from "./config/worker-config.ts";

/** The jobs a trigger with this expression runs, given each job's expression; a ConfigError when none does. */
export function jobsFor(cron: string, crons: Record<ScheduledJob, string>): ScheduledJob[] {
  const jobs = (Object.keys(crons) as ScheduledJob[]).filter((job) => crons[job] === cron.trim());
  if (jobs.length === 0) {
    throw new ConfigError(
      `no job runs on the cron "${cron}": ${Object.entries(crons)
        .map(([job, c]) => `${job} runs on "${c}" (${CRON_VARS[job as ScheduledJob]})`)
        .join(", ")}`,
    );
  }
  return jobs;
}

-- A running canary decides every minute, and most decisions are "hold". One row a minute would bury
-- the decisions that matter (the dashboard and GET /v1/canary list the newest first) and grow
-- without bound, so a hold that follows a hold of the same step now updates that row: `ts` and the
-- reason, figures and settings are the latest tick's, `first_ts` is when the step began holding,
-- and `repeats` counts the ticks. Every other decision is still one row.
ALTER TABLE canary_decisions ADD COLUMN first_ts INTEGER;
ALTER TABLE canary_decisions ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;

-- Measurements at scale (README "Measurements at scale"):
-- 1. A request has at most one run per arm, and (request_id, arm) is now its key: a queue batch that
--    is delivered again after a failure inserts nothing twice.
DELETE FROM runs WHERE id NOT IN (SELECT MIN(id) FROM runs GROUP BY request_id, arm);
DROP INDEX runs_request;
CREATE UNIQUE INDEX runs_request_arm ON runs (request_id, arm);

-- 2. Every write transaction of measurements logs itself: the report counts transactions from it.
CREATE TABLE writes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Milliseconds since the epoch, when the transaction ran.
  ts INTEGER NOT NULL,
  -- 'direct' (a request wrote its own rows) or 'queue' (the consumer wrote a batch).
  source TEXT NOT NULL CHECK (source IN ('direct', 'queue')),
  -- Rows the transaction carried.
  rows INTEGER NOT NULL
);
CREATE INDEX writes_ts ON writes (ts);

-- 3. Hourly aggregates: the cron trigger folds raw rows older than the retention period into these
--    and deletes them. `hour` is the hour's start, in milliseconds since the epoch.
CREATE TABLE run_hours (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  count INTEGER NOT NULL,
  served INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  -- Student rows: requests where the teacher also answered, and how many of those agreed on top-1.
  pairs INTEGER NOT NULL,
  agreeing INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model)
);
CREATE TABLE run_hour_faults (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  fault TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model, fault)
);
-- Latencies of successful runs, rounded to two significant figures (at most 5% off), with counts:
-- percentiles over aggregated hours come from this histogram.
CREATE TABLE run_hour_latency (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  latency_ms REAL NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model, latency_ms)
);
CREATE TABLE request_hours (
  hour INTEGER PRIMARY KEY,
  requests INTEGER NOT NULL,
  fallbacks INTEGER NOT NULL,
  transactions INTEGER NOT NULL,
  written_rows INTEGER NOT NULL
);

-- A report you can trust (docs/api.md "The report"): every run row says why its arm ran and which
-- model version ran, and its request id is the X-Request-Id the client saw.
--
-- 1. Why the arm ran: 'split' (the client's bucket), 'forced' (X-Force-Arm), 'compare' (POST
--    /v1/compare), 'shadow' (the teacher run after a student answer). Rows written before this
--    migration did not record it: a compare row and a shadow's teacher row are known from their
--    mode; the rest stay 'unrecorded'. The version is '' where it was not recorded.
ALTER TABLE runs ADD COLUMN reason TEXT NOT NULL DEFAULT 'unrecorded'
  CHECK (reason IN ('split', 'forced', 'compare', 'shadow', 'unrecorded'));
ALTER TABLE runs ADD COLUMN version TEXT NOT NULL DEFAULT '';
UPDATE runs SET reason = 'compare' WHERE mode = 'compare';
UPDATE runs SET reason = 'shadow' WHERE mode = 'shadow' AND arm = 'teacher';

-- 2. A client may send its own request id, and may send the same one twice: a row's key is now the
--    request id, the time the request arrived and the arm. A queue batch delivered again still
--    inserts nothing twice (its rows carry the same time), and agreement joins on id and time.
DROP INDEX runs_request_arm;
CREATE UNIQUE INDEX runs_request_arm ON runs (request_id, ts, arm);

-- 3. The hourly aggregates keep version and reason as grouping keys, and the latency histogram
--    keeps failed runs too (ok = 0; a timeout at its timeout), so the report's percentiles can say
--    whether they include failures. SQLite cannot change a primary key: the tables are rebuilt.
CREATE TABLE run_hours_new (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  served INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  pairs INTEGER NOT NULL,
  agreeing INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model, version, reason)
);
INSERT INTO run_hours_new SELECT hour, arm, model, '', 'unrecorded', count, served, errors, pairs, agreeing FROM run_hours;
DROP TABLE run_hours;
ALTER TABLE run_hours_new RENAME TO run_hours;

CREATE TABLE run_hour_faults_new (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  reason TEXT NOT NULL,
  fault TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model, version, reason, fault)
);
INSERT INTO run_hour_faults_new SELECT hour, arm, model, '', 'unrecorded', fault, n FROM run_hour_faults;
DROP TABLE run_hour_faults;
ALTER TABLE run_hour_faults_new RENAME TO run_hour_faults;

-- Latencies rounded to two significant figures, with counts, per outcome. Runs that never reached
-- the model (rate_limited, circuit_open: latency 0) are left out.
CREATE TABLE run_hour_latency_new (
  hour INTEGER NOT NULL,
  arm TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  reason TEXT NOT NULL,
  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
  latency_ms REAL NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (hour, arm, model, version, reason, ok, latency_ms)
);
INSERT INTO run_hour_latency_new SELECT hour, arm, model, '', 'unrecorded', 1, latency_ms, n FROM run_hour_latency;
DROP TABLE run_hour_latency;
ALTER TABLE run_hour_latency_new RENAME TO run_hour_latency;

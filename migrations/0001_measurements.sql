-- One row per model run: a request writes one row (A/B) or two (shadow, compare, teacher fallback),
-- sharing request_id, so agreement is a join of a request's student and teacher rows.
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  -- Milliseconds since the epoch, when the request arrived.
  ts INTEGER NOT NULL,
  -- 'ab' (routed), 'shadow' (student answered, teacher ran after), 'compare' (both, on request).
  mode TEXT NOT NULL CHECK (mode IN ('ab', 'shadow', 'compare')),
  arm TEXT NOT NULL CHECK (arm IN ('student', 'teacher')),
  model TEXT NOT NULL,
  -- Wall-clock milliseconds in the Worker; for the teacher this includes the network.
  latency_ms REAL NOT NULL,
  -- 1 when the model produced a prediction.
  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
  -- Why a run failed: 'timeout', 'unreachable', 'http_error', 'bad_response', 'inference_error'.
  fault TEXT,
  top1 INTEGER,
  -- 1 when this run's prediction is what the client received.
  served INTEGER NOT NULL CHECK (served IN (0, 1)),
  -- HTTP status the client received.
  status INTEGER NOT NULL
);
CREATE INDEX runs_ts ON runs (ts);
CREATE INDEX runs_request ON runs (request_id);

-- Routing settings changed at run time through the admin API; the Worker's vars are the defaults.
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);

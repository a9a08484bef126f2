-- The canary controller (docs/ab-testing.md "Canary"): its state, one row, and every decision it or
-- an admin made. Its settings live in `settings` under keys starting with "canary.".
CREATE TABLE canary_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  status TEXT NOT NULL CHECK (status IN ('off', 'running', 'paused', 'rolled_back', 'done')),
  -- The student under test (the default student when the canary started) and its version.
  model TEXT,
  version TEXT,
  -- The share of clients it has put on the student (STUDENT_PERCENT's override).
  percent REAL NOT NULL,
  -- When the current step began (ms since the epoch): evidence for a step counts from here.
  step_started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- Who wrote last: each write sets a new token and its other statements run only while the token
  -- is theirs, so a cron tick that read the state before a pause cannot undo the pause.
  token TEXT NOT NULL
);
INSERT INTO canary_state (id, status, model, version, percent, step_started_at, updated_at, token) VALUES (1, 'off', NULL, NULL, 0, 0, 0, '');

CREATE TABLE canary_decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Milliseconds since the epoch.
  ts INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('start', 'promote', 'hold', 'rollback', 'complete', 'pause', 'resume', 'stop')),
  -- 'cron' (the controller) or 'admin'.
  actor TEXT NOT NULL CHECK (actor IN ('cron', 'admin')),
  model TEXT,
  version TEXT,
  percent_from REAL NOT NULL,
  percent_to REAL NOT NULL,
  reason TEXT NOT NULL,
  -- JSON: the window's figures and the settings they were judged by (cron decisions only).
  figures TEXT,
  settings TEXT
);
CREATE INDEX canary_decisions_ts ON canary_decisions (ts);

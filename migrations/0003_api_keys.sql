-- API keys (README "Who may reach the teacher"): made and revoked through the admin API. Only the
-- SHA-256 of a key is stored; the key itself is shown once, when it is made.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  -- Hex SHA-256 of the whole key.
  hash TEXT NOT NULL UNIQUE,
  -- Comma-separated: 'force' (X-Force-Arm), 'compare' (POST /v1/compare).
  rights TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

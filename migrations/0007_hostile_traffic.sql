-- Safe under hostile traffic (docs/ab-safety.md "Threat model"):
--
-- 1. Each run row names the client it came from: an opaque HMAC (16 hex digits) of the caller's
--    address as Cloudflare gives it, of the client an API key or the admin names, or of the id the
--    Worker issued. The canary counts at most a few of one client's requests per window. Rows written
--    before this migration have none, and each counts as a client of its own.
ALTER TABLE runs ADD COLUMN client TEXT;

-- 2. Dashboard sessions ended by signing out, kept until they would have expired anyway: a signed
--    cookie replayed after sign-out is refused.
CREATE TABLE revoked_sessions (
  id TEXT PRIMARY KEY,
  -- Milliseconds since the epoch; past it the cookie is refused on its own and the row can go.
  expires_at INTEGER NOT NULL
);

-- 3. Addresses that guessed wrong too often (failed sign-ins, bad bearer tokens): every credential
--    they present is refused with 429 until `until` (milliseconds since the epoch).
CREATE TABLE auth_blocks (
  address TEXT PRIMARY KEY,
  until INTEGER NOT NULL
);

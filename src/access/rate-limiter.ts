// What the Worker needs of a Cloudflare Rate Limiting binding ([[ratelimits]] in wrangler.toml): the
// teacher allowance (routing/teacher-gate.ts) and the allowance of wrong guesses (auth-throttle.ts).
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

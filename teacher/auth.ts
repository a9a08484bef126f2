// The teacher host answers only the Worker: every request but the health probes must carry the shared
// token (TEACHER_TOKEN) in the agreed header (src/routing/teacher-link.ts). Hono's bearer-auth does
// the check, comparing in constant time (over SHA-256 digests, so the length does not leak either).
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { DEFAULT_TEACHER_AUTH_HEADER, usesBearerPrefix } from "../src/routing/teacher-link.ts";

export interface TeacherAuthOptions {
  token: string;
  /** The header that carries it; default Authorization (as `Bearer <token>`). */
  header?: string;
  /** Paths answered without the token: load balancers probe health anonymously. */
  open?: readonly string[];
}

export const HEALTH_PATHS = ["/v2/health/live", "/v2/health/ready"] as const;

export function teacherAuth(options: TeacherAuthOptions): MiddlewareHandler {
  const header = options.header ?? DEFAULT_TEACHER_AUTH_HEADER;
  const open = new Set(options.open ?? HEALTH_PATHS);
  const expected = usesBearerPrefix(header) ? `Authorization: Bearer <TEACHER_TOKEN>` : `${header}: <TEACHER_TOKEN>`;
  const check = bearerAuth({
    token: options.token,
    headerName: header,
    prefix: usesBearerPrefix(header) ? "Bearer" : "",
    realm: "narrowdeep-teacher",
    noAuthenticationHeader: { message: { error: `missing ${expected}` } },
    invalidAuthenticationHeader: { message: { error: `malformed ${header} header: expected ${expected}` } },
    invalidToken: { message: { error: "invalid teacher token" } },
  });
  return async function teacherAuth(c, next) {
    if (open.has(c.req.path)) return next();
    return check(c, next);
  };
}

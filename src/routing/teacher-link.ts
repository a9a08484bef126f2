// How the Worker proves itself to the teacher host: a shared secret (TEACHER_TOKEN) in a header. The
// header is configurable so that a gateway in front of Triton (which checks no tokens itself) can
// check it: `Authorization` carries `Bearer <token>`, any other header the token alone. The Worker
// (teacher-client.ts) and the teacher host (teacher/auth.ts) both follow this.

export const DEFAULT_TEACHER_AUTH_HEADER = "Authorization";
/** Shortest token accepted: 128 bits of base64url. */
export const MIN_TEACHER_TOKEN_LENGTH = 22;

// The characters a bearer token may hold (RFC 6750), as Hono's bearer-auth checks them.
const TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;
// An HTTP field name (RFC 9110 token).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export class TeacherLinkError extends Error {
  override name = "TeacherLinkError";
}

/** Whether the header carries `Bearer <token>` (Authorization) or the bare token (any other). */
export const usesBearerPrefix = (header: string) => header.toLowerCase() === "authorization";

/** Checks a token and a header name, saying what is wrong with either. */
export function checkTeacherLink(
  token: string,
  header: string,
  tokenSource = "TEACHER_TOKEN",
  headerSource = "TEACHER_AUTH_HEADER",
): void {
  if (!HEADER_NAME.test(header))
    throw new TeacherLinkError(`${headerSource} must be an HTTP header name, got "${header.slice(0, 40)}"`);
  if (token.length < MIN_TEACHER_TOKEN_LENGTH || !TOKEN.test(token)) {
    throw new TeacherLinkError(
      `${tokenSource} must be at least ${MIN_TEACHER_TOKEN_LENGTH} characters of A-Z a-z 0-9 . _ ~ + / - (e.g. 32 random bytes in base64url)`,
    );
  }
}

/** The header the Worker sends: [name, value]. */
export function teacherAuthHeader(token: string, header = DEFAULT_TEACHER_AUTH_HEADER): [string, string] {
  return [header, usesBearerPrefix(header) ? `Bearer ${token}` : token];
}

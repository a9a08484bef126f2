// One error type for every answer that is not a success: routes throw it, app.onError turns it into
// `{"error": message}` with its status. Anything else becomes a 500 whose body says nothing internal.
//
// A `detail` is for operators: what is misconfigured or broken, naming variables, files or digests.
// It goes to the log, and into the body (as "detail") only for a caller holding the admin token;
// anonymous callers see the message alone.

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503;

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const notFound = (message: string) => new HttpError(404, message);

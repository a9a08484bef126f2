// One error type for every answer that is not a success: routes throw it, app.onError turns it into
// `{"error": message}` with its status. Anything else becomes a 500 whose body says nothing internal.

export type ErrorStatus = 400 | 404 | 405 | 413 | 415 | 422 | 500 | 503;

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: ErrorStatus,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const notFound = (message: string) => new HttpError(404, message);

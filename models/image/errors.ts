// Why an image cannot become a model input, with the HTTP status the Worker answers it with.
// The decoder is shared by the Worker and training (models/ is where the two halves meet), so it
// cannot throw the Worker's HttpError; the Worker's error handler answers this one as it would that.

export type ImageErrorStatus = 400 | 413 | 415 | 422;

export class ImageError extends Error {
  override name = "ImageError";
  constructor(
    readonly status: ImageErrorStatus,
    message: string,
  ) {
    super(message);
  }
}

// An uploaded image (raw body or multipart field) to the input tensors of the models that will see it.
// Only the tensors outlive uploadedInputs(): the body and the decoded pixels (megabytes for a large
// image) are unreachable before the caller waits for a model or the teacher, so concurrent uploads
// queued in an isolate hold a few kilobytes each, not their images. While they are read, they hold
// their bodies: maxUploadBytes bounds that, below the body limit that JSON batches need.
import type { Context } from "hono";
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError, badRequest } from "../http/errors.ts";
import { decodeImage } from "../../models/image/decode.ts";
import { toModelInputs } from "../../models/image/preprocess.ts";
import type { ImageFormat } from "../../models/image/types.ts";
import { mediaType } from "./context.ts";
import { type Limits, imageLimits } from "./limits.ts";

/** Content types of a raw image body; the bytes themselves decide PNG or JPEG. */
const RAW_TYPES = new Set([undefined, "image/png", "image/jpeg", "image/jpg", "application/octet-stream"]);
/** The multipart field that carries the image; otherwise the form's only file. */
const FIELD = "image";

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
}

/** Room a multipart form's boundaries and part headers take around the file. */
const MULTIPART_FRAMING = 4096;

const tooLarge = (maxBytes: number) => new HttpError(413, `the image is over the upload limit of ${maxBytes} bytes`);

/** The uploaded image's bytes, from a raw body or a multipart form; never empty, never over maxBytes. */
export async function imageBytes(c: Context, maxBytes: number): Promise<Uint8Array> {
  // Refused before reading when the client says how much it sends; a multipart form's framing is
  // at most a few hundred bytes, so its Content-Length may exceed the limit by that much.
  const declared = Number(c.req.header("Content-Length"));
  if (declared > maxBytes + (mediaType(c) === "multipart/form-data" ? MULTIPART_FRAMING : 0)) throw tooLarge(maxBytes);
  const bytes = await uploadedBytes(c);
  if (bytes.length > maxBytes) throw tooLarge(maxBytes);
  if (bytes.length === 0) throw badRequest("the image is empty: send a PNG or JPEG image");
  return bytes;
}

async function uploadedBytes(c: Context): Promise<Uint8Array> {
  const type = mediaType(c);
  if (type === "multipart/form-data") {
    let form: FormData;
    try {
      form = await c.req.raw.formData();
    } catch {
      throw badRequest("malformed multipart/form-data body");
    }
    // workers-types declares form values as strings; uploads are Files at run time.
    const files = ([...form.entries()] as [string, string | File][]).filter(
      (e): e is [string, File] => typeof e[1] !== "string",
    );
    const file = files.find(([name]) => name === FIELD) ?? (files.length === 1 ? files[0] : undefined);
    if (!file) throw badRequest(`the form must carry the image as a file field named "${FIELD}"`);
    return new Uint8Array(await file[1].arrayBuffer());
  }
  if (!RAW_TYPES.has(type)) {
    throw new HttpError(
      415,
      `Content-Type ${type} is not accepted: send the image as image/png, image/jpeg, application/octet-stream or a multipart/form-data field "${FIELD}"`,
    );
  }
  // The raw request, not c.req.arrayBuffer(): Hono caches what that reads on the context, which
  // would keep the body alive for as long as the request runs.
  return new Uint8Array(await c.req.raw.arrayBuffer());
}

/** The upload's description and one input tensor per model (in the order given). */
export async function uploadedInputs(
  c: Context,
  models: readonly ModelEntry[],
  limits: Limits,
): Promise<{ image: ImageInfo; inputs: Float32Array[] }> {
  const { image, format } = await decodeImage(await imageBytes(c, limits.maxUploadBytes), imageLimits(limits));
  return { image: { format, width: image.width, height: image.height }, inputs: toModelInputs(image, models) };
}

// Classification for people: an image in (raw body or multipart field), top-k labels out. Mounted at /v1.
import { type Context, Hono } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError, badRequest, notFound } from "../errors.ts";
import { decodeImage } from "../image/decode.ts";
import { inputGeometry, toModelInput } from "../image/preprocess.ts";
import { type RouteContext, findModel, mediaType, nameModel, runTimed } from "./context.ts";

const DEFAULT_K = 5;
/** Content types of a raw image body; the bytes themselves decide PNG or JPEG. */
const RAW_TYPES = new Set([undefined, "image/png", "image/jpeg", "image/jpg", "application/octet-stream"]);
/** The multipart field that carries the image; otherwise the form's only file. */
const FIELD = "image";

/** `?k=`: how many labels to answer, at most the model's label count. */
export function topK(c: Context, labels: number): number {
  const raw = c.req.query("k");
  if (raw === undefined) return Math.min(DEFAULT_K, labels);
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) throw badRequest(`k must be a positive integer, got "${raw.slice(0, 40)}"`);
  return Math.min(Number(raw), labels);
}

/** The uploaded image's bytes, from a raw body or a multipart form; never empty. */
export async function imageBytes(c: Context): Promise<Uint8Array> {
  const bytes = await uploadedBytes(c);
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
    const files = ([...form.entries()] as [string, string | File][]).filter((e): e is [string, File] => typeof e[1] !== "string");
    const file = files.find(([name]) => name === FIELD) ?? (files.length === 1 ? files[0] : undefined);
    if (!file) throw badRequest(`the form must carry the image as a file field named "${FIELD}"`);
    return new Uint8Array(await file[1].arrayBuffer());
  }
  if (!RAW_TYPES.has(type)) {
    throw new HttpError(415, `Content-Type ${type} is not accepted: send the image as image/png, image/jpeg, application/octet-stream or a multipart/form-data field "${FIELD}"`);
  }
  return new Uint8Array(await c.req.arrayBuffer());
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** The k most probable labels, most probable first. */
export function rankPredictions(probabilities: Float32Array, entry: ModelEntry, k: number): Prediction[] {
  return Array.from(probabilities, (probability, index) => ({ label: entry.labels[index] ?? String(index), index, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

export function classifyRoutes({ store, limits }: RouteContext): Hono {
  const app = new Hono();

  const classify = async (c: Context, entry: ModelEntry) => {
    nameModel(c, entry);
    const k = topK(c, entry.labels.length);
    startTime(c, "decode");
    const { image, format } = await decodeImage(await imageBytes(c), { maxSide: limits.maxImageSide, maxPixels: limits.maxImagePixels });
    const input = toModelInput(image, entry);
    endTime(c, "decode");
    const { height, width, channels } = inputGeometry(entry);
    const dims = entry.input.layout === "NCHW" ? [1, channels, height, width] : [1, height, width, channels];
    const results = await runTimed(c, store, entry, input, dims);
    const probabilities = results.get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    return c.json({
      model: { name: entry.name, version: entry.version },
      image: { format, width: image.width, height: image.height },
      predictions: rankPredictions(probabilities, entry, k),
    });
  };

  app.post("/classify", (c) => {
    const entry = store.defaultStudent();
    if (!entry) throw notFound("this server hosts no default student model");
    return classify(c, entry);
  });
  app.post("/models/:name/classify", (c) => classify(c, findModel(store, c.req.param("name"))));
  return app;
}

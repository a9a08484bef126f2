// Classification for people: an image in (raw body or multipart field), top-k labels out. Mounted at /v1.
// POST /v1/classify is routed between the student and the teacher (ab.ts) when the app has A/B
// routing and a teacher is configured; otherwise the default student answers alone.
import { type Context, Hono } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { notFound } from "../http/errors.ts";
import { singleImageDims } from "../../models/image/preprocess.ts";
import { isMultiLabel, rankPredictions } from "../models/predictions.ts";
import type { AbBindings } from "../routing/setup.ts";
import type { AbRouter } from "./ab.ts";
import { type RouteContext, findModel, nameModel, runTimed, selectionOf } from "./context.ts";
import { uploadedInputs } from "./upload.ts";

export function classifyRoutes({ store, limits }: RouteContext, ab?: AbRouter): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();

  const classify = async (c: Context, entry: ModelEntry) => {
    nameModel(c, entry);
    const selection = selectionOf(c, entry);
    startTime(c, "decode");
    const { image, inputs } = await uploadedInputs(c, [entry], limits);
    endTime(c, "decode");
    const results = await runTimed(c, store, entry, inputs[0]!, singleImageDims(entry));
    const probabilities = results.get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    const multi = isMultiLabel(entry) ? { multiLabel: true, threshold: selection.threshold } : {};
    return c.json({
      model: { name: entry.name, version: entry.version },
      image,
      ...multi,
      predictions: rankPredictions(probabilities, entry, selection),
    });
  };

  app.post("/classify", (c) => {
    const routed = ab?.setup(c);
    if (ab && routed) return ab.classify(c, routed);
    const entry = store.defaultStudent();
    if (!entry) throw notFound("this server hosts no default student model");
    return classify(c, entry);
  });
  app.post("/models/:name/classify", (c) => classify(c, findModel(store, c.req.param("name"))));
  return app;
}

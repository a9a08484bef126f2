// Open Inference Protocol (KServe v2) endpoints for every hosted model, mounted at /v2.
import { type Context, Hono } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError } from "../http/errors.ts";
import { parseInferRequest, splitBody } from "../oip/request.ts";
import { inferResponse, modelConfig, modelMetadata, serverMetadata } from "../oip/response.ts";
import { HEADER_LENGTH } from "../oip/types.ts";
import { type RouteContext, findModel, mediaType, nameModel, runTimed } from "./context.ts";

/** Bodies an infer request may have: JSON, or JSON plus a binary section. */
const INFER_TYPES = new Set([undefined, "application/json", "application/octet-stream"]);

export function oipRoutes({ store, limits, server }: RouteContext): Hono {
  const app = new Hono();
  /**
   * The parsed request, without the body: read from the raw request (Hono would cache it on the
   * context) in a function of its own, so neither the body nor its JSON lives on while the model runs.
   */
  const readInferRequest = async (c: Context, entry: ModelEntry) => {
    const { json, binary } = splitBody(
      new Uint8Array(await c.req.raw.arrayBuffer()),
      c.req.header(HEADER_LENGTH) ?? null,
    );
    return parseInferRequest(json, binary, entry, limits);
  };
  const model = (c: Context) => {
    const entry = findModel(store, c.req.param("name")!, c.req.param("version"));
    nameModel(c, entry);
    return entry;
  };

  app.get("/", (c) => c.json(serverMetadata(server.name, server.version)));
  app.get("/health/live", (c) => c.json({ live: true }));
  app.get("/health/ready", async (c) => {
    const states = await Promise.all(store.models.map((m) => store.ready(m)));
    const ready = states.every(Boolean);
    return c.json({ ready }, ready ? 200 : 503);
  });

  for (const prefix of ["/models/:name", "/models/:name/versions/:version"]) {
    app.get(prefix, (c) => c.json(modelMetadata(model(c))));

    app.get(`${prefix}/config`, (c) => c.json(modelConfig(model(c), limits.maxBatch)));

    app.get(`${prefix}/ready`, async (c) => {
      const entry = model(c);
      const ready = await store.ready(entry);
      return c.json({ name: entry.name, ready }, ready ? 200 : 503);
    });

    app.post(`${prefix}/infer`, async (c) => {
      const entry = model(c);
      const type = mediaType(c);
      if (!INFER_TYPES.has(type)) {
        throw new HttpError(
          415,
          `Content-Type ${type} is not accepted: send application/json (or application/octet-stream with ${HEADER_LENGTH})`,
        );
      }
      startTime(c, "decode");
      const request = await readInferRequest(c, entry);
      endTime(c, "decode");
      const results = await runTimed(c, store, entry, request.input, request.dims);
      const { body: out, headers } = inferResponse(entry, request, results);
      return c.body(out, 200, headers);
    });
  }
  return app;
}

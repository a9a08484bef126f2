// /openapi.json: the OpenAPI 3.1 document of /v1 and /v2, made from the route table (routes.ts) by
// zod's JSON Schema output (draft 2020-12, OpenAPI 3.1's dialect). Built once per isolate, on the
// first request for it, so that start-up does not pay for it.
import * as z from "zod";
import { type Access, API_ROUTES, type ApiRoute, type Body } from "./routes.ts";
import { ErrorBody } from "./schemas/errors.ts";
import { InferRequest } from "./schemas/oip.ts";

type Json = Record<string, unknown>;

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  400: "Bad input, named in the error",
  401: "Missing or wrong credentials",
  403: "The credentials lack the right",
  404: "No such model, key or route",
  409: "Does not fit the current state (the canary)",
  413: "Over a size limit",
  415: "Media type or content encoding not accepted",
  422: "Cannot be compared (labels differ)",
  429: "Over an allowance; see Retry-After",
  500: "Internal error (details in the log)",
  503: "Unavailable: model, teacher, D1 or admin token missing",
};

/** A zod schema as a JSON Schema (2020-12) for the document: the request's side or the answer's. */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
  }) as Json;
  return rest;
}

const json = (schema: z.ZodType, io: "input" | "output") => ({
  "application/json": { schema: jsonSchema(schema, io) },
});
const binary = (type: string) => ({ type: "string", contentMediaType: type });

function requestBody(body: Body): Json {
  if (body === "image") {
    return {
      required: true,
      description: "a PNG or JPEG, as the raw body or as the multipart field `image`",
      content: {
        "image/png": { schema: binary("image/png") },
        "image/jpeg": { schema: binary("image/jpeg") },
        "application/octet-stream": { schema: binary("application/octet-stream") },
        "multipart/form-data": {
          schema: { type: "object", properties: { image: binary("application/octet-stream") }, required: ["image"] },
        },
      },
    };
  }
  if (body === "infer") {
    return {
      required: true,
      description:
        "JSON, or (Triton's binary tensor data) JSON of Inference-Header-Content-Length bytes followed by the tensors' bytes",
      content: {
        ...json(InferRequest, "input"),
        "application/octet-stream": { schema: binary("application/octet-stream") },
      },
    };
  }
  return { required: true, content: json(body, "input") };
}

const security = (access: Access): Json[] | undefined => {
  if (access === "anyone") return undefined;
  if (access === "admin") return [{ adminToken: [] }];
  return access.required ? [{ adminToken: [] }, { apiKey: [] }] : [{}, { adminToken: [] }, { apiKey: [] }];
};

function operation(route: ApiRoute): Json {
  const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  const queryParams = Object.entries(route.query ?? {}).map(([name, schema]) => {
    const { description, ...rest } = jsonSchema(schema, "input");
    return { name, in: "query", required: false, ...(description ? { description } : {}), schema: rest };
  });
  const responses: Json = {};
  for (const [status, schema] of Object.entries({ ...route.responses, 500: ErrorBody })) {
    const content = json(schema, "output");
    if (route.body === "infer" && status === "200")
      Object.assign(content, { "application/octet-stream": { schema: binary("application/octet-stream") } });
    responses[status] = { description: STATUS_TEXT[Number(status)] ?? "", content };
  }
  const secured = security(route.access);
  return {
    operationId: `${route.method}${route.path.replace(/\{(\w+)\}/g, "by-$1").replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: route.summary,
    ...(pathParams.length + queryParams.length > 0 ? { parameters: [...pathParams, ...queryParams] } : {}),
    ...(route.body ? { requestBody: requestBody(route.body) } : {}),
    responses,
    ...(secured ? { security: secured } : {}),
  };
}

/** The document, from the routes given (the API's own by default). */
export function buildOpenApiDocument(
  routes: readonly ApiRoute[] = API_ROUTES,
  server = { name: "narrowdeep", version: "0.1.0" },
): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  return {
    openapi: "3.1.0",
    info: {
      title: `${server.name} edge API`,
      version: server.version,
      description:
        'Students served in a Cloudflare Worker (/v1 for people, /v2 the Open Inference Protocol), measured live against a teacher. Every error answers {"error": "..."}.',
    },
    paths,
    components: {
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "the ADMIN_TOKEN secret" },
        apiKey: {
          type: "http",
          scheme: "bearer",
          description: "an API key (ndk_...) made through POST /v1/keys, with the route's right",
        },
      },
    },
  };
}

let cached: Json | undefined;
/** The API's document, built on first use. */
export const openApiDocument = (): Json => (cached ??= buildOpenApiDocument());

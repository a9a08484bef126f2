// Every route of /v1 and /v2 as the contract states it: method, path, what it takes, and each status
// it may answer with the shape of that answer. openapi.ts turns this table into /openapi.json; the
// request schemas here are the ones the routes validate with (settings patch, API keys), and
// test/src/openapi.test.ts calls every route listed and checks its answers against the document.
import * as z from "zod";
import { NewKeyRequest } from "../access/api-keys.ts";
import { SETTING_RULES } from "../routing/settings.ts";
import { canaryPatchSchema } from "../canary/settings.ts";
import { ApiKey, ApiKeys, Canary, Config, NewApiKey, Report } from "./schemas/admin.ts";
import { ClassifyQuery, Classification, Comparison } from "./schemas/classify.ts";
import { ErrorBody } from "./schemas/errors.ts";
import { InferResponse, Live, ModelConfig, ModelMetadata, ModelReady, Ready, ServerMetadata } from "./schemas/oip.ts";
import { settingsPatchSchema } from "../routing/settings-patch.ts";

/** Who may call: anyone, the admin token, or the admin token or an API key with the named right. */
export type Access = "anyone" | "admin" | { right: "force" | "compare"; required: boolean };

/** What a request body is: JSON of a schema, an image upload, or an inference request (JSON, optionally with a binary section). */
export type Body = z.ZodType | "image" | "infer";

export interface ApiRoute {
  method: "get" | "post" | "patch" | "delete";
  /** OpenAPI's form: /v2/models/{name}. */
  path: string;
  summary: string;
  access: Access;
  query?: Record<string, z.ZodType>;
  body?: Body;
  /** Each status it may answer (500 is added to all), with the JSON it answers. */
  responses: Record<number, z.ZodType>;
}

/** An optional query parameter, as text. */
const text = (description: string) => z.string().optional().describe(description);

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
/** What any route with a body may meet before it runs: the body limit and Content-Encoding. */
const bodyErrors = errors(400, 413, 415);
/** The admin guard's answers: no or a wrong token (401), a malformed header (400), too many guesses (429), no token set or no D1 (503). */
const adminErrors = errors(400, 401, 429, 503);

const oip = (prefix: string, versioned: boolean): ApiRoute[] => {
  const which = versioned ? " at a version" : "";
  return [
    {
      method: "get",
      path: prefix,
      summary: `A model's metadata${which}`,
      access: "anyone",
      responses: { 200: ModelMetadata, ...errors(404) },
    },
    {
      method: "get",
      path: `${prefix}/config`,
      summary: `A model's Triton configuration${which}`,
      access: "anyone",
      responses: { 200: ModelConfig, ...errors(404) },
    },
    {
      method: "get",
      path: `${prefix}/ready`,
      summary: `Whether a model${which} loads (loads it)`,
      access: "anyone",
      responses: { 200: ModelReady, 503: ModelReady, ...errors(404) },
    },
    {
      method: "post",
      path: `${prefix}/infer`,
      summary: `Runs a model${which} on FP32 tensors`,
      access: "anyone",
      body: "infer",
      responses: { 200: InferResponse, ...bodyErrors, ...errors(404, 503) },
    },
  ];
};

export const API_ROUTES: readonly ApiRoute[] = [
  { method: "get", path: "/v2", summary: "Server metadata", access: "anyone", responses: { 200: ServerMetadata } },
  { method: "get", path: "/v2/health/live", summary: "Liveness", access: "anyone", responses: { 200: Live } },
  {
    method: "get",
    path: "/v2/health/ready",
    summary: "Readiness: every model loads (loads them)",
    access: "anyone",
    responses: { 200: Ready, 503: Ready },
  },
  ...oip("/v2/models/{name}", false),
  ...oip("/v2/models/{name}/versions/{version}", true),

  {
    method: "post",
    path: "/v1/classify",
    summary: "Classifies an image with the default student, or routes it between student and teacher (A/B)",
    access: { right: "force", required: false },
    query: ClassifyQuery,
    body: "image",
    responses: { 200: Classification, ...bodyErrors, ...errors(401, 403, 404, 429, 503) },
  },
  {
    method: "post",
    path: "/v1/models/{name}/classify",
    summary: "Classifies an image with the named model",
    access: "anyone",
    query: ClassifyQuery,
    body: "image",
    responses: { 200: Classification, ...bodyErrors, ...errors(404, 503) },
  },
  {
    method: "post",
    path: "/v1/compare",
    summary: "Runs the student and the teacher on the same image",
    access: { right: "compare", required: true },
    query: { ...ClassifyQuery, model: text("a student other than the default") },
    body: "image",
    responses: { 200: Comparison, ...bodyErrors, ...errors(401, 403, 404, 422, 429, 503) },
  },

  {
    method: "get",
    path: "/v1/report",
    summary: "Counts, errors, latency and agreement per arm and model",
    access: "admin",
    query: {
      since: text(
        "from when: an ISO 8601 date or time with offset, epoch milliseconds, or a duration back (15m, 2h, 7d); default: from the beginning",
      ),
    },
    responses: { 200: Report, ...adminErrors },
  },
  {
    method: "get",
    path: "/v1/config",
    summary: "The routing settings in force, their defaults, and the teacher",
    access: "admin",
    responses: { 200: Config, ...adminErrors },
  },
  {
    method: "patch",
    path: "/v1/config",
    summary: "Changes settings at run time (null restores a default)",
    access: "admin",
    body: settingsPatchSchema(SETTING_RULES, { canary: canaryPatchSchema }),
    responses: { 200: Config, ...bodyErrors, ...adminErrors, ...errors(409) },
  },

  {
    method: "get",
    path: "/v1/keys",
    summary: "Every API key (never the secret)",
    access: "admin",
    responses: { 200: ApiKeys, ...adminErrors },
  },
  {
    method: "post",
    path: "/v1/keys",
    summary: "Makes an API key; the secret is shown this once",
    access: "admin",
    body: NewKeyRequest,
    responses: { 201: NewApiKey, ...bodyErrors, ...adminErrors },
  },
  {
    method: "delete",
    path: "/v1/keys/{id}",
    summary: "Revokes an API key at once",
    access: "admin",
    responses: { 200: ApiKey, ...adminErrors, ...errors(404) },
  },

  {
    method: "get",
    path: "/v1/canary",
    summary: "The canary's state, settings and decisions",
    access: "admin",
    query: { limit: z.string().regex(/^\d+$/).optional().describe("how many decisions, 1 to 1000 (default 50)") },
    responses: { 200: Canary, ...adminErrors },
  },
  {
    method: "post",
    path: "/v1/canary/start",
    summary: "Starts a canary for the default student",
    access: "admin",
    responses: { 200: Canary, ...adminErrors, ...errors(404, 409) },
  },
  ...(["pause", "resume", "stop"] as const).map(
    (action): ApiRoute => ({
      method: "post",
      path: `/v1/canary/${action}`,
      summary: `${action[0]!.toUpperCase()}${action.slice(1)}s the canary`,
      access: "admin",
      responses: { 200: Canary, ...adminErrors, ...errors(409) },
    }),
  ),
];

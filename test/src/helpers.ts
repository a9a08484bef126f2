// Building apps and requests over the fixture models for the workerd tests.
import type { Manifest } from "../../models/schema.ts";
import { createApp } from "../../src/app.ts";
import { ModelStore } from "../../src/models/store.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import type { AppOptions } from "../../src/options.ts";
import { entryOf, fixtureFiles, fixtures } from "./fixtures.ts";

export { entryOf, fixtureFiles, fixtures, jpegs } from "./fixtures.ts";

/** A store over the fixture models (or any manifest over their files), on onnxruntime-web. */
export function fixtureStore(
  manifest: Manifest = fixtures.manifest,
  files: Record<string, Uint8Array> = fixtureFiles,
): ModelStore {
  return new ModelStore(manifest, files, ortWebEngine);
}

export function fixtureApp(options: Partial<AppOptions> = {}) {
  return createApp({ store: fixtureStore(), ...options });
}

type Requester = {
  request: (path: string, init?: RequestInit, env?: Record<string, unknown>) => Response | Promise<Response>;
};

export function postJson(app: Requester, path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The admin token, for apps built without the A/B bindings: an error's detail is shown to the admin only. */
const ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijkl";

/** postJson with the admin token (in the environment and in the request). */
export function postJsonAsAdmin(app: Requester, path: string, body: unknown) {
  return app.request(
    path,
    {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    },
    { ADMIN_TOKEN },
  );
}

/** An OIP infer body for one model from flat data. */
export function inferBody(name: string, dims: number[], data: ArrayLike<number>, extra: Record<string, unknown> = {}) {
  return {
    inputs: [{ name: entryOf(name).input.name, shape: dims, datatype: "FP32", data: Array.from(data) }],
    ...extra,
  };
}

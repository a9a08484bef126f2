// Building apps and inputs for the workerd tests.
import { inject } from "vitest";
import type { Manifest } from "../../models/schema.ts";
import { createApp } from "../../src/app.ts";
import { ModelStore } from "../../src/models/store.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import type { AppOptions } from "../../src/options.ts";
import "./fixture-types.ts";

export const fixtures = inject("edge");

function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
}

export const fixtureFiles: Record<string, Uint8Array> = Object.fromEntries(Object.entries(fixtures.files).map(([k, v]) => [k, fromBase64(v)]));
export const jpegs: Record<string, Uint8Array> = Object.fromEntries(Object.entries(fixtures.jpegs).map(([k, v]) => [k, fromBase64(v)]));

/** A store over the fixture models (or any manifest over their files), on onnxruntime-web. */
export function fixtureStore(manifest: Manifest = fixtures.manifest, files: Record<string, Uint8Array> = fixtureFiles): ModelStore {
  return new ModelStore(manifest, files, ortWebEngine);
}

export function fixtureApp(options: Partial<AppOptions> = {}) {
  return createApp({ store: fixtureStore(), ...options });
}

export function entryOf(name: string) {
  const e = fixtures.manifest.models.find((m) => m.name === name);
  if (!e) throw new Error(`no fixture model ${name}`);
  return e;
}

export function postJson(app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }, path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
}

/** An OIP infer body for one model from flat data. */
export function inferBody(name: string, dims: number[], data: ArrayLike<number>, extra: Record<string, unknown> = {}) {
  return { inputs: [{ name: entryOf(name).input.name, shape: dims, datatype: "FP32", data: Array.from(data) }], ...extra };
}

// The fixtures the Node global setup provides, decoded for tests in workerd. No onnxruntime here, so
// tests that need no model do not load its WASM.
import { inject } from "vitest";
import "./fixture-types.ts";

export const fixtures = inject("edge");

function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
}

export const fixtureFiles: Record<string, Uint8Array> = Object.fromEntries(
  Object.entries(fixtures.files).map(([k, v]) => [k, fromBase64(v)]),
);
export const jpegs: Record<string, Uint8Array> = Object.fromEntries(
  Object.entries(fixtures.jpegs).map(([k, v]) => [k, fromBase64(v)]),
);

export function entryOf(name: string) {
  const e = fixtures.manifest.models.find((m) => m.name === name);
  if (!e) throw new Error(`no fixture model ${name}`);
  return e;
}

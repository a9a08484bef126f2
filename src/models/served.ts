// Which students a deployment serves, whether its models are bundled (scripts/bundle-models.ts) or
// read from R2 (r2.ts): the manifest's default student, then its `serve` list.
import type { Manifest, ModelEntry } from "../../models/schema.ts";

export function servedStudents(manifest: Manifest): ModelEntry[] {
  const names = [...new Set([manifest.defaultStudent, ...(manifest.serve ?? [])])];
  return names.flatMap((n) => manifest.models.filter((m) => m.name === n && m.role === "student"));
}

/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The Worker as deployed serves the students its bundle holds (scripts/bundle-models.ts): the
// manifest's default student and its serve list. The others stay in models/ and the Worker does not
// know them.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { manifestJson, modelFiles } from "../../models/bundle.ts";
import shipped from "../../models/manifest.json";
import { parseManifest } from "../../models/schema.ts";

const all = parseManifest(shipped);
const bundled = parseManifest(manifestJson);
const served = [...new Set([all.defaultStudent, ...(all.serve ?? [])])].filter((n) =>
  all.models.some((m) => m.name === n && m.role === "student"),
);
const unserved = all.models.filter((m) => m.role === "student" && !served.includes(m.name));

describe("the bundled models", () => {
  it("are the served students' files, with a manifest of those students and the teachers", () => {
    expect(bundled.models.filter((m) => m.role === "student").map((m) => m.name)).toEqual(
      all.models.filter((m) => served.includes(m.name)).map((m) => m.name),
    );
    expect(bundled.models.filter((m) => m.role === "teacher")).toEqual(all.models.filter((m) => m.role === "teacher"));
    expect(Object.keys(modelFiles).sort()).toEqual(
      all.models
        .filter((m) => served.includes(m.name))
        .map((m) => m.file)
        .sort(),
    );
    expect(bundled.defaultStudent).toBe(all.defaultStudent);
  });

  it.runIf(unserved.length > 0)("leave the other students unknown to the Worker", async () => {
    const res = await SELF.fetch(`http://x/v2/models/${unserved[0]!.name}`);
    expect(res.status).toBe(404);
    expect((await SELF.fetch(`http://x/v2/models/${all.defaultStudent}/ready`)).status).toBe(200);
  });
});

// scripts/upload-models.ts: the served students' files, checked against the manifest, then the
// manifest last; a real local upload (wrangler r2 object put --local) that Miniflare's R2, the bucket
// `wrangler dev` reads, then serves byte for byte.
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../models/schema.ts";
import { DEFAULT_BUCKET, uploadModels, uploadPlan } from "../../scripts/upload-models.ts";
import { servedStudents } from "../../src/models/served.ts";

let dir: string;
const shipped = parseManifest(JSON.parse(readFileSync("models/manifest.json", "utf8")));
const student = shipped.models.find((m) => m.name === shipped.defaultStudent)!;
/** The default student first, then the manifest's serve list. */
const served = servedStudents(shipped);

/** A models folder with the shipped manifest and the served students' files only. */
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-upload-"));
  copyFileSync("models/manifest.json", join(dir, "manifest.json"));
  for (const m of served) copyFileSync(join("models", m.file), join(dir, m.file));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("upload plan", () => {
  it("puts the served students' files, then the manifest last", () => {
    const plan = uploadPlan({ modelsDir: dir, prefix: "models/", all: false });
    expect(plan.map((u) => u.key)).toEqual([...served.map((m) => `models/${m.file}`), "models/manifest.json"]);
    expect(plan.at(-1)!.contentType).toBe("application/json");
  });

  it("refuses a missing file, one of the wrong size and one of the wrong digest", () => {
    // --all names the baselines, which this folder lacks.
    expect(() => uploadPlan({ modelsDir: dir, prefix: "", all: true })).toThrow(/file .* does not exist/);
    const bad = mkdtempSync(join(tmpdir(), "narrowdeep-upload-bad-"));
    try {
      copyFileSync(join(dir, "manifest.json"), join(bad, "manifest.json"));
      const bytes = readFileSync(join(dir, student.file));
      writeFileSync(join(bad, student.file), bytes.subarray(1));
      expect(() => uploadPlan({ modelsDir: bad, prefix: "", all: false })).toThrow(
        `has ${bytes.length - 1} bytes, the manifest says ${student.bytes}`,
      );
      const flipped = Buffer.from(bytes);
      flipped[100] = flipped[100]! ^ 1;
      writeFileSync(join(bad, student.file), flipped);
      expect(() => uploadPlan({ modelsDir: bad, prefix: "", all: false })).toThrow(
        /has sha256 [0-9a-f]{64}, the manifest says/,
      );
      expect(() => uploadPlan({ modelsDir: join(bad, "nowhere"), prefix: "", all: false })).toThrow(
        /manifest.json does not exist/,
      );
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});

describe("a local upload", () => {
  it("lands in the local bucket wrangler dev reads, in order", async () => {
    const persist = join(dir, "state");
    const lines: string[] = [];
    uploadModels(
      { modelsDir: dir, bucket: DEFAULT_BUCKET, prefix: "", all: false, target: { remote: false, persistTo: persist } },
      (l) => lines.push(l),
    );
    expect(lines).toEqual(
      [...served.map((m) => m.file), "manifest.json"].map(
        (key) => `upload-models: ${DEFAULT_BUCKET}/${key} (local (${persist}))`,
      ),
    );
    // Where `wrangler dev --persist-to` keeps R2 (v3/r2), opened as the MODELS binding.
    const mf = new Miniflare({
      modules: true,
      script:
        "export default { fetch: async (r, env) => { const o = await env.MODELS.get(new URL(r.url).pathname.slice(1)); return o ? new Response(o.body) : new Response(null, { status: 404 }); } }",
      r2Buckets: { MODELS: DEFAULT_BUCKET },
      r2Persist: join(persist, "v3", "r2"),
    });
    try {
      for (const m of served) {
        const model = new Uint8Array(await (await mf.dispatchFetch(`http://x/${m.file}`)).arrayBuffer());
        expect(createHash("sha256").update(model).digest("hex")).toBe(m.sha256);
      }
      expect(parseManifest(await (await mf.dispatchFetch("http://x/manifest.json")).json())).toEqual(shipped);
    } finally {
      await mf.dispose();
    }
  });
});

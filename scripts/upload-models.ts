// Uploads models/ to the R2 bucket the Worker reads when it is bound as MODELS (src/models/r2.ts):
// the files of the students the manifest serves (its default student and `serve` list; --all: every
// student), each checked against the manifest's size and sha256 first, then manifest.json LAST, so a
// Worker checking for a new version never reads a manifest that names a file not yet uploaded.
//   npx tsx scripts/upload-models.ts --remote [--bucket NAME] [--prefix P] [--models DIR] [--all]
//   npx tsx scripts/upload-models.ts --local [--persist-to DIR] ...   (the bucket `wrangler dev` uses)
// It runs `wrangler r2 object put` for each object.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type ModelEntry, parseManifest } from "../models/schema.ts";
import { servedStudents } from "../src/models/served.ts";

export const DEFAULT_BUCKET = "narrowdeep-models";
const MANIFEST = "manifest.json";

export interface UploadOptions {
  modelsDir: string;
  bucket: string;
  /** Key prefix (the Worker's MODELS_PREFIX). */
  prefix: string;
  /** Every student rather than the served ones. */
  all: boolean;
  target: { remote: true } | { remote: false; persistTo?: string };
}

export interface Upload {
  key: string;
  path: string;
  contentType: string;
}

/** The objects to put, in order (the manifest last); throws when a file is missing or does not match its entry. */
export function uploadPlan({ modelsDir, prefix, all }: Pick<UploadOptions, "modelsDir" | "prefix" | "all">): Upload[] {
  const manifestPath = join(modelsDir, MANIFEST);
  if (!existsSync(manifestPath)) throw new Error(`upload-models: ${manifestPath} does not exist`);
  const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, "utf8")));
  const students: ModelEntry[] = all ? manifest.models.filter((m) => m.role === "student") : servedStudents(manifest);
  if (students.length === 0) throw new Error(`upload-models: ${manifestPath} serves no student`);
  const files = students.map((m) => {
    const path = join(modelsDir, m.file);
    if (!existsSync(path)) throw new Error(`upload-models: ${m.name}'s file ${path} does not exist`);
    const bytes = readFileSync(path);
    if (bytes.length !== m.bytes)
      throw new Error(`upload-models: ${path} has ${bytes.length} bytes, the manifest says ${m.bytes}`);
    const digest = createHash("sha256").update(bytes).digest("hex");
    if (digest !== m.sha256)
      throw new Error(`upload-models: ${path} has sha256 ${digest}, the manifest says ${m.sha256}`);
    return { key: `${prefix}${m.file}`, path, contentType: "application/octet-stream" };
  });
  return [...files, { key: `${prefix}${MANIFEST}`, path: manifestPath, contentType: "application/json" }];
}

/** `wrangler r2 object put` for one object; throws with wrangler's output when it fails. */
function put(upload: Upload, { bucket, target }: UploadOptions, wrangler: string): void {
  const args = [
    "r2",
    "object",
    "put",
    `${bucket}/${upload.key}`,
    "--file",
    upload.path,
    "--content-type",
    upload.contentType,
  ];
  if (target.remote) args.push("--remote");
  else {
    args.push("--local");
    if (target.persistTo) args.push("--persist-to", target.persistTo);
  }
  const r = spawnSync(wrangler, args, {
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
  });
  if (r.status !== 0)
    throw new Error(
      `upload-models: wrangler ${args.join(" ")} failed:\n${(r.stderr || r.stdout || String(r.error)).trim()}`,
    );
}

export function uploadModels(
  options: UploadOptions,
  log: (line: string) => void = console.log,
  wrangler = join("node_modules", ".bin", "wrangler"),
): Upload[] {
  const plan = uploadPlan(options);
  const where = options.target.remote
    ? "remote"
    : `local${options.target.persistTo ? ` (${options.target.persistTo})` : ""}`;
  for (const upload of plan) {
    put(upload, options, wrangler);
    log(`upload-models: ${options.bucket}/${upload.key} (${where})`);
  }
  return plan;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      models: { type: "string", default: "models" },
      bucket: { type: "string", default: DEFAULT_BUCKET },
      prefix: { type: "string", default: "" },
      all: { type: "boolean", default: false },
      remote: { type: "boolean", default: false },
      local: { type: "boolean", default: false },
      "persist-to": { type: "string" },
    },
  });
  try {
    if (values.remote === values.local)
      throw new Error(
        "upload-models: say where: --remote (the bucket on Cloudflare) or --local (the one `wrangler dev` uses)",
      );
    if (values.remote && values["persist-to"]) throw new Error("upload-models: --persist-to goes with --local");
    const target = values.remote
      ? ({ remote: true } as const)
      : ({ remote: false, persistTo: values["persist-to"] } as const);
    const plan = uploadModels({
      modelsDir: values.models,
      bucket: values.bucket,
      prefix: values.prefix,
      all: values.all,
      target,
    });
    console.log(`upload-models: ${plan.length - 1} model file(s), then the manifest`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

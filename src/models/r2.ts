// Models from an R2 bucket (the optional binding MODELS): the manifest and the ONNX files are read
// from the bucket instead of the bundle, checked against the manifest (size, sha256) like bundled
// ones (an object of the wrong size is refused before its body is read; a manifest over
// MAX_MANIFEST_BYTES is not read at all), and their sessions cached per isolate. A new version uploaded to the bucket
// (scripts/upload-models.ts writes the manifest last) is picked up without a redeploy: at most every
// `checkSeconds`, a request starts a version check that the Worker hands to waitUntil, off the request
// path. The check reads the manifest's etag; when it changed, the new manifest's changed students are
// loaded, verified and run once before the store switches to it; a version that fails is logged and
// not served (the previous one stays), and tried again at the next check.
import type { R2Bucket } from "@cloudflare/workers-types";
import { ManifestError, type Manifest, parseManifest } from "../../models/schema.ts";
import { servedStudents } from "./served.ts";
import type { ModelFileSource, ModelStore } from "./store.ts";
import { syntheticInput } from "./warmup.ts";

export type ModelBucket = Pick<R2Bucket, "get" | "head">;

export interface R2ModelsOptions {
  /** The binding's name, for messages. */
  binding: string;
  /** Prefix of every key ("" or e.g. "models/"). */
  prefix: string;
  /** The manifest's key, after the prefix. */
  manifestKey: string;
  /** Least seconds between two version checks (0: every request starts one when none is running). */
  checkSeconds: number;
}

/**
 * Largest manifest read from the bucket: 1 MiB, about 20 times the shipped one (48 KB for 13 models),
 * so that a wrong object under the manifest's key cannot fill the isolate's memory.
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export const DEFAULT_R2_MODELS: R2ModelsOptions = {
  binding: "MODELS",
  prefix: "",
  manifestKey: "manifest.json",
  checkSeconds: 60,
};

/** The bucket cannot give a manifest to serve (missing, unreadable, invalid): the Worker answers 503. */
export class ModelSourceError extends Error {
  override name = "ModelSourceError";
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The manifest the Worker serves from a full one: its served students (default and `serve` list). */
export function servedManifest(manifest: Manifest): Manifest {
  return { ...manifest, models: servedStudents(manifest) };
}

export class R2ModelFiles implements ModelFileSource {
  readonly missing: string;

  constructor(
    private readonly bucket: ModelBucket,
    readonly options: R2ModelsOptions = DEFAULT_R2_MODELS,
  ) {
    this.missing = `in the R2 bucket ${options.binding}${options.prefix ? ` under ${options.prefix}` : ""}`;
  }

  /** The object's name as log lines give it: binding/key. */
  objectName(file: string): string {
    return `${this.options.binding}/${this.options.prefix}${file}`;
  }

  async read(file: string, bytes?: number): Promise<Uint8Array | undefined> {
    try {
      const object = await this.bucket.get(`${this.options.prefix}${file}`);
      if (!object) return undefined;
      // An object of another size fails the manifest's check anyway: it is not read into memory.
      if (bytes !== undefined && object.size !== bytes) {
        await object.body.cancel();
        throw new Error(`it has ${object.size} bytes, the manifest says ${bytes}; not read`);
      }
      return new Uint8Array(await object.arrayBuffer());
    } catch (err) {
      throw new Error(`R2 object ${this.objectName(file)}: ${message(err)}`);
    }
  }

  /** The manifest's etag, or undefined when there is none. */
  async manifestEtag(): Promise<string | undefined> {
    const name = this.objectName(this.options.manifestKey);
    try {
      return (await this.bucket.head(`${this.options.prefix}${this.options.manifestKey}`))?.etag;
    } catch (err) {
      throw new ModelSourceError(`R2 object ${name}: ${message(err)}`);
    }
  }

  /** The manifest and its etag; ModelSourceError naming the object when it is missing or invalid. */
  async manifest(): Promise<{ manifest: Manifest; etag: string }> {
    const name = this.objectName(this.options.manifestKey);
    let text: string;
    let etag: string;
    try {
      const object = await this.bucket.get(`${this.options.prefix}${this.options.manifestKey}`);
      if (!object)
        throw new ModelSourceError(`R2 object ${name} does not exist: upload the models (scripts/upload-models.ts)`);
      if (object.size > MAX_MANIFEST_BYTES) {
        await object.body.cancel();
        throw new ModelSourceError(
          `R2 object ${name} has ${object.size} bytes, over the ${MAX_MANIFEST_BYTES} a manifest may have; not read`,
        );
      }
      text = await object.text();
      etag = object.etag;
    } catch (err) {
      throw err instanceof ModelSourceError ? err : new ModelSourceError(`R2 object ${name}: ${message(err)}`);
    }
    try {
      return { manifest: parseManifest(JSON.parse(text)), etag };
    } catch (err) {
      throw new ModelSourceError(
        `R2 object ${name} is not a valid manifest: ${err instanceof ManifestError || err instanceof SyntaxError ? err.message : message(err)}`,
      );
    }
  }
}

/** Keeps a store on the bucket's current manifest. */
export class ModelUpdater {
  private lastCheck: number;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly store: ModelStore,
    private readonly files: R2ModelFiles,
    private etag: string,
    /** The whole manifest served (teachers included): the A/B routing reads its teachers from here. */
    private current: Manifest,
    private readonly log: { info: (line: string) => void; error: (line: string) => void } = {
      info: (l) => console.log(l),
      error: (l) => console.error(l),
    },
    now = Date.now(),
  ) {
    this.lastCheck = now;
  }

  /** The manifest served now, whole: its teachers too. */
  get manifest(): Manifest {
    return this.current;
  }

  /** Starts a version check when the last one is at least checkSeconds old; its promise is for waitUntil. */
  maybeCheck(now = Date.now()): Promise<void> | undefined {
    if (this.checking || now - this.lastCheck < this.files.options.checkSeconds * 1000) return undefined;
    this.lastCheck = now;
    this.checking = this.check()
      .catch((err) => this.log.error(`models: version check failed: ${message(err)}`))
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  private async check(): Promise<void> {
    // A file re-uploaded under the same manifest is tried again at its next use.
    await this.store.forgetFailures();
    const etag = await this.files.manifestEtag();
    if (etag === undefined)
      throw new ModelSourceError(
        `R2 object ${this.files.objectName(this.files.options.manifestKey)} does not exist; still serving the models read before`,
      );
    if (etag === this.etag) return;
    const { manifest, etag: read } = await this.files.manifest();
    const next = servedManifest(manifest);
    const changed = next.models.filter((m) => !this.store.isLoaded(m));
    try {
      // Loaded, verified and run once (which starts its warm-up) before anyone is served by it.
      for (const entry of changed) {
        const { input, dims } = syntheticInput(entry);
        await this.store.run(entry, input, dims);
      }
    } catch (err) {
      throw new ModelSourceError(
        `not serving the new manifest ${this.files.objectName(this.files.options.manifestKey)} (etag ${read}): ${message(err)}`,
      );
    }
    this.store.replace(next);
    this.current = manifest;
    this.etag = read;
    this.log.info(
      `models: now serving ${next.models.map((m) => `${m.name}@${m.version}`).join(", ")} from ${this.files.objectName(this.files.options.manifestKey)} (etag ${read})`,
    );
  }
}

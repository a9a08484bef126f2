// The models one server hosts: a manifest plus the bytes of each file. A model's bytes are checked
// against the manifest's sha256 and turned into a session on first use, once per isolate; never at
// module load (Workers allow one second of start-up).
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";
import type { Engine, Session } from "./engine.ts";

export type ModelFiles = Record<string, ArrayBuffer | Uint8Array>;

/** A model that cannot serve: missing file, wrong size or digest, or a runtime that refused it. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
  constructor(
    readonly model: string,
    message: string,
  ) {
    super(message);
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The Worker hosts the students; teachers run on a GPU host and are only described here. */
export function studentsOnly(manifest: Manifest): Manifest {
  return { ...manifest, models: manifest.models.filter((m) => m.role === "student") };
}

export class ModelStore {
  private readonly sessions = new Map<string, Promise<Session>>();
  /** Runs go one at a time: one WASM instance serves every model of the isolate. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly manifest: Manifest,
    private readonly files: ModelFiles,
    private readonly engine: Engine,
  ) {}

  get models(): readonly ModelEntry[] {
    return this.manifest.models;
  }

  find(name: string): ModelEntry | undefined {
    return this.manifest.models.find((m) => m.name === name);
  }

  defaultStudent(): ModelEntry | undefined {
    return this.find(this.manifest.defaultStudent);
  }

  /** The model's session, verified and created on first call; the same promise afterwards. */
  session(entry: ModelEntry): Promise<Session> {
    let s = this.sessions.get(entry.name);
    if (!s) {
      s = this.load(entry);
      this.sessions.set(entry.name, s);
    }
    return s;
  }

  /** Whether the model's load has started (and so will not be paid again). */
  isLoaded(entry: ModelEntry): boolean {
    return this.sessions.has(entry.name);
  }

  /** Loads the model if needed; true when it can serve. */
  async ready(entry: ModelEntry): Promise<boolean> {
    try {
      await this.session(entry);
      return true;
    } catch {
      return false;
    }
  }

  async run(entry: ModelEntry, input: Float32Array, dims: number[]): Promise<Map<string, OutputTensor>> {
    const session = await this.session(entry);
    const result = this.queue.then(() => session.run(input, dims));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async load(entry: ModelEntry): Promise<Session> {
    const file = this.files[entry.file];
    if (!file) throw new ModelLoadError(entry.name, `model "${entry.name}": file ${entry.file} is not bundled`);
    const bytes = file instanceof Uint8Array ? file : new Uint8Array(file);
    if (bytes.length !== entry.bytes) {
      throw new ModelLoadError(entry.name, `model "${entry.name}": ${entry.file} has ${bytes.length} bytes, the manifest says ${entry.bytes}`);
    }
    const digest = await sha256Hex(bytes);
    if (digest !== entry.sha256) {
      throw new ModelLoadError(entry.name, `model "${entry.name}": ${entry.file} has sha256 ${digest}, the manifest says ${entry.sha256}`);
    }
    try {
      return await this.engine.createSession(bytes, entry);
    } catch (err) {
      throw new ModelLoadError(entry.name, `model "${entry.name}": the runtime refused ${entry.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

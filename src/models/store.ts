// The models one server hosts: a manifest plus the bytes of each file (bundled, or read from an R2
// bucket: r2.ts). A model's bytes are checked against the manifest's size and sha256 and turned into
// a session on first use, once per isolate; never at module load (Workers allow one second of
// start-up). A session is warmed up (warmup.ts) when asked: as part of its load (blocking), or after
// its first run, in the background.
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";
import type { Engine, Session } from "./engine.ts";
import { SerialRunner } from "./serial.ts";
import { WARMUP_OFF, type WarmupOptions, type WarmupResult, warmUp } from "./warmup.ts";

export type ModelFiles = Record<string, ArrayBuffer | Uint8Array>;

/** Where model files come from. */
export interface ModelFileSource {
  /** Completes "file X is not ...", for errors: "bundled", "in the R2 bucket MODELS". */
  readonly missing: string;
  /**
   * The file's bytes; undefined when there is no such file. `bytes`, the manifest's size, lets a
   * source refuse a file of another size before reading it.
   */
  read(file: string, bytes?: number): Promise<Uint8Array | undefined>;
}

/** The files bundled into the Worker (models/bundle.ts). */
export function bundledFiles(files: ModelFiles): ModelFileSource {
  return {
    missing: "bundled",
    read: async (file) => {
      const bytes = files[file];
      return bytes === undefined ? undefined : bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    },
  };
}

const isSource = (files: ModelFiles | ModelFileSource): files is ModelFileSource =>
  typeof (files as ModelFileSource).read === "function";

export interface StoreOptions {
  /** Warm-up of each new session, blocking or in the background; off unless given. */
  warmup?: Partial<WarmupOptions>;
  /** Where warm-up results go (the Worker logs them). */
  onWarmup?: (result: WarmupResult) => void;
}

/** A session is the model's name and digest: a new version of a model is a new session. */
const sessionKey = (entry: ModelEntry) => `${entry.name}@${entry.sha256}`;

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
  /** Runs go one at a time, requests first: one WASM instance serves every model of the isolate. */
  private readonly runner = new SerialRunner();
  private readonly files: ModelFileSource;
  private readonly warmupOptions: WarmupOptions;
  private readonly warmups = new Map<string, Promise<WarmupResult | undefined>>();
  /** Warm-ups still running, for the Worker's waitUntil. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private current: Manifest;

  constructor(
    manifest: Manifest,
    files: ModelFiles | ModelFileSource,
    private readonly engine: Engine,
    private readonly options: StoreOptions = {},
  ) {
    this.current = manifest;
    this.files = isSource(files) ? files : bundledFiles(files);
    this.warmupOptions = { ...WARMUP_OFF, ...options.warmup };
  }

  get manifest(): Manifest {
    return this.current;
  }

  get models(): readonly ModelEntry[] {
    return this.manifest.models;
  }

  find(name: string): ModelEntry | undefined {
    return this.current.models.find((m) => m.name === name);
  }

  defaultStudent(): ModelEntry | undefined {
    return this.find(this.current.defaultStudent);
  }

  /**
   * Serves `manifest` from now on (a new version read from R2). Sessions of unchanged models are kept;
   * those of models gone or changed are released once the runs queued before them are done.
   */
  replace(manifest: Manifest): void {
    const keep = new Set(manifest.models.map(sessionKey));
    this.current = manifest;
    for (const [key, session] of this.sessions) {
      if (keep.has(key)) continue;
      this.sessions.delete(key);
      this.warmups.delete(key);
      this.track(this.runner.run(() => session.then((s) => s.release?.()).catch(() => undefined), "background"));
    }
  }

  /** Forgets failed loads, so the next use tries again (a file fixed in the bucket). */
  async forgetFailures(): Promise<void> {
    await Promise.all(
      [...this.sessions].map(([key, session]) =>
        session.catch(() => {
          if (this.sessions.get(key) === session) this.sessions.delete(key);
        }),
      ),
    );
  }

  /** Warm-ups (and releases) still running: the Worker passes this to waitUntil. Undefined when idle. */
  background(): Promise<unknown> | undefined {
    return this.inFlight.size > 0 ? Promise.all(this.inFlight) : undefined;
  }

  /** The model's finished warm-up, if any. */
  async warmup(entry: ModelEntry): Promise<WarmupResult | undefined> {
    return this.warmups.get(sessionKey(entry));
  }

  /** The model's session, verified and created on first call; the same promise afterwards. */
  session(entry: ModelEntry): Promise<Session> {
    const key = sessionKey(entry);
    let s = this.sessions.get(key);
    if (!s) {
      const loading = this.load(entry);
      s = loading;
      if (this.blocking) {
        const warming = loading.then(
          (session) => this.warm(entry, session, () => this.sessions.get(key) !== s),
          () => undefined,
        );
        this.warmups.set(key, warming);
        s = loading.then(async (session) => {
          await warming;
          return session;
        });
      }
      this.sessions.set(key, s);
    }
    return s;
  }

  private get blocking(): boolean {
    return this.warmupOptions.mode === "blocking" && this.warmupOptions.maxRuns > 0;
  }

  /** Whether the model's load has started (and so will not be paid again). */
  isLoaded(entry: ModelEntry): boolean {
    return this.sessions.has(sessionKey(entry));
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

  /** Runs the model; `onStart` is called when its turn comes (the wait before it is queueing, not inference). */
  async run(
    entry: ModelEntry,
    input: Float32Array,
    dims: number[],
    onStart?: () => void,
  ): Promise<Map<string, OutputTensor>> {
    const session = await this.session(entry);
    const result = this.runner.run(() => {
      onStart?.();
      return session.run(input, dims);
    });
    this.startWarmup(entry, session, result);
    return result;
  }

  /** In background mode: after the session's first run (so the request that made it is not held up), its warm-up, once. */
  private startWarmup(entry: ModelEntry, session: Session, first: Promise<unknown>): void {
    const key = sessionKey(entry);
    if (this.warmupOptions.maxRuns === 0 || this.blocking || this.warmups.has(key)) return;
    const sessionPromise = this.sessions.get(key);
    const warming = first
      .catch(() => undefined)
      .then(() => this.warm(entry, session, () => this.sessions.get(key) !== sessionPromise));
    this.warmups.set(key, warming);
    this.track(warming);
  }

  /** Warms the session up; never fails (a failed warm-up is logged and answers undefined). */
  private warm(entry: ModelEntry, session: Session, stopped: () => boolean): Promise<WarmupResult | undefined> {
    const runOnce = async (input: Float32Array, dims: number[], now: () => number) => {
      // onnxruntime-web's run settles in microtasks: without a turn of the event loop between runs,
      // requests that arrived meanwhile could not even be read until the whole warm-up was over.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return this.runner.run(async () => {
        const t = now();
        await session.run(input, dims);
        return now() - t;
      }, "background");
    };
    return warmUp(entry, runOnce, this.warmupOptions, stopped).then(
      (result) => {
        this.options.onWarmup?.(result);
        return result;
      },
      (err) => {
        console.error(`warm-up of model "${entry.name}" failed: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      },
    );
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async load(entry: ModelEntry): Promise<Session> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.files.read(entry.file, entry.bytes);
    } catch (err) {
      throw new ModelLoadError(
        entry.name,
        `model "${entry.name}": reading ${entry.file} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!bytes)
      throw new ModelLoadError(entry.name, `model "${entry.name}": file ${entry.file} is not ${this.files.missing}`);
    if (bytes.length !== entry.bytes) {
      throw new ModelLoadError(
        entry.name,
        `model "${entry.name}": ${entry.file} has ${bytes.length} bytes, the manifest says ${entry.bytes}`,
      );
    }
    const digest = await sha256Hex(bytes);
    if (digest !== entry.sha256) {
      throw new ModelLoadError(
        entry.name,
        `model "${entry.name}": ${entry.file} has sha256 ${digest}, the manifest says ${entry.sha256}`,
      );
    }
    try {
      return await this.engine.createSession(bytes, entry);
    } catch (err) {
      throw new ModelLoadError(
        entry.name,
        `model "${entry.name}": the runtime refused ${entry.file}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

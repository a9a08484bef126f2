// npm run distill -- [--preset quick|full] [--config FILE] [--<field> VALUE ...] [--run-dir DIR]
//                    [--resume DIR] [--only a,b] [--teacher FILE] [--no-export]
// Trains the teacher, then each student with KD and alone, into one run directory; then exports the
// run to models/ (unless --no-export). Ctrl-C (SIGINT) or SIGTERM checkpoints and stops; --resume DIR
// continues. Exit codes: 0 done, 1 error, 2 bad usage, 130 stopped by a signal.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MEASURED_THROUGHPUT, PRESETS } from "../config/presets.ts";
import { type DistillConfig, kebab } from "../config/schema.ts";
import { ConfigError, configHelp, parseFlag, resolveConfig } from "../config/resolve.ts";
import { fileSetOptions, openDataset } from "../data/index.ts";
import { describeModels, expectedSeconds, planSubRuns } from "../train/plan.ts";
import { openRunDir, readRunFile } from "../train/run-dir.ts";

/** Fashion-MNIST's training split, which the presets hold validation images out of. */
const FASHION_MNIST_TRAIN_IMAGES = 60_000;

/** "31.9 h": a full-width preset's expected compute at the measured throughput. */
function presetHours(name: string): string {
  const config = PRESETS[name]!;
  const images = config.trainLimit || FASHION_MNIST_TRAIN_IMAGES - config.valSize;
  return `${(expectedSeconds(config, images, MEASURED_THROUGHPUT) / 3600).toFixed(1)} h`;
}

const USAGE = `Usage: npm run distill -- [options]

Run options:
  --preset NAME                  quick (the demo: 2,000 images at half width, minutes on 2 cores),
                                 full (all data, full width, 3 seeds: ${presetHours("full")}) or paper
                                 (60 epochs, for a GPU box: ${presetHours("paper")}); default quick
  --config FILE                  JSON object of config fields (and optionally "preset"), applied over the preset
  --run-dir DIR                  where the run goes (default runs/<preset>-<date>-<time>)
  --resume DIR                   continue the run in DIR with its stored configuration (and the
                                 --only it was started with, unless --only is given again)
  --only NAMES                   sub-runs to train, comma-separated: teacher, <student>-<method> (kd, dkd, ...),
                                 <student>-baseline
  --teacher FILE                 distill from this teacher instead of training one: a checkpoint
                                 (.ndckpt) or any ONNX image classifier (.onnx; docs/bring-your-own.md)
  --no-export                    do not export the trained models at the end
  --models-dir DIR               export into DIR (default: the repository's models/; for the quick
                                 preset, the run directory's models/, so the demo never touches the
                                 shipped models)
  --force                        let the export replace models trained on more images or for more
                                 epochs (refused without it)
  --no-progress                  no progress bar (epoch summaries only)
  --describe                     print the sub-runs and each model's params and MACs, then exit
  -h, --help                     this text

The teacher's soft targets are cached per augmented view on disk, in $NARROWDEEP_CACHE_DIR or else
node_modules/.cache/narrowdeep (about 110 MB per teacher for Fashion-MNIST): a resumed run, and other
runs from the same teacher, do not run the teacher again on views it has seen. --no-teacher-cache
turns the cache off.

Times are compute on Fashion-MNIST, sub-runs one after another, at the throughput measured by
${MEASURED_THROUGHPUT.source}: teacher ${MEASURED_THROUGHPUT.teacher}, students ${MEASURED_THROUGHPUT.student} training images/s at full width,
evaluation included (training/config/presets.ts; docs/training.md#times). While a run trains, its
log and progress line give the whole run's ETA at the rate it measures.

Config fields (override the preset; a config file uses the camelCase names):
${configHelp()}
`;

class UsageError extends Error {}

/** Signals this soon after the first are the same stop delivered twice, not a request to quit at once. */
const SIGNAL_ECHO_MS = 1000;

/** Where the teacher's soft targets are kept between processes (train/teacher-cache.ts). */
const CACHE_DIR =
  process.env.NARROWDEEP_CACHE_DIR || fileURLToPath(new URL("../../node_modules/.cache/narrowdeep", import.meta.url));

/** Fields that change how a run computes, not what it computes: a resumed run may change them. */
const RUNTIME_FIELDS = [
  "backend",
  "replicas",
  "convolutions",
  "teacherEngine",
  "teacherCache",
  "checkpointMinutes",
  "metricsEvery",
] as const satisfies readonly (keyof DistillConfig)[];

interface Args {
  preset?: string;
  configFile?: string;
  runDir?: string;
  resume?: string;
  only?: string[];
  teacher?: string;
  export: boolean;
  modelsDir?: string;
  force: boolean;
  progress: boolean;
  help: boolean;
  describe: boolean;
  flags: Partial<DistillConfig>;
}

/** Run options that take a value, by flag. */
const VALUE_OPTIONS = {
  "--preset": "preset",
  "--config": "configFile",
  "--run-dir": "runDir",
  "--resume": "resume",
  "--teacher": "teacher",
  "--models-dir": "modelsDir",
} as const;
/** Run options without a value: the setting each one makes. */
const SWITCHES = {
  "-h": ["help", true],
  "--help": ["help", true],
  "--describe": ["describe", true],
  "--no-export": ["export", false],
  "--no-progress": ["progress", false],
  "--force": ["force", true],
} as const;

export function parseArgs(argv: string[]): Args {
  const args: Args = { export: true, force: false, progress: true, help: false, describe: false, flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (Object.hasOwn(VALUE_OPTIONS, flag)) {
      args[VALUE_OPTIONS[flag as keyof typeof VALUE_OPTIONS]] = value();
    } else if (Object.hasOwn(SWITCHES, arg)) {
      const [key, setting] = SWITCHES[arg as keyof typeof SWITCHES];
      args[key] = setting;
    } else if (flag === "--only") {
      args.only = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    } else {
      const parsed = parseFlag(arg, () => argv[++i]);
      if (!parsed) throw new UsageError(`unknown option ${arg} (see --help)`);
      (args.flags as Record<string, unknown>)[parsed.key] = parsed.value;
    }
  }
  return args;
}

function timestamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let preset: string;
  let config: DistillConfig;
  let runDir: string;
  let teacher = args.teacher;
  if (teacher && !existsSync(teacher)) throw new UsageError(`--teacher ${teacher}: file not found`);
  if (args.describe) {
    ({ preset, config } = args.resume
      ? readRunFile(args.resume)
      : resolveConfig({ preset: args.preset, file: args.configFile, flags: args.flags }));
    const { train, classes } = await openDataset(config.dataset, config.data ?? undefined, fileSetOptions(config));
    console.log(
      `preset ${preset}, ${config.dataset} (${train.height}x${train.width}x${train.channels}, ${classes.length} classes)`,
    );
    for (const line of describeModels(config, train, classes.length)) console.log(line);
    console.log(
      `sub-runs: ${planSubRuns(config)
        .map((r) => r.name)
        .join(", ")}`,
    );
    return 0;
  }
  if (args.resume) {
    // A resumed run keeps its configuration; only how it runs may change.
    const changed = Object.keys(args.flags).filter((k) => !(RUNTIME_FIELDS as readonly string[]).includes(k));
    if (args.preset || args.configFile || args.runDir || changed.length) {
      throw new UsageError(
        `--resume continues a run with its stored configuration; drop ${[args.preset && "--preset", args.configFile && "--config", args.runDir && "--run-dir", ...changed.map((k) => `--${kebab(k)}`)].filter(Boolean).join(", ")}`,
      );
    }
    runDir = args.resume;
    const stored = readRunFile(runDir);
    preset = stored.preset;
    config = { ...stored.config, ...args.flags };
    // How it runs is not part of the experiment: compare the rest with what is stored.
    const runtime = Object.fromEntries(RUNTIME_FIELDS.map((k) => [k, stored.config[k]]));
    openRunDir(runDir, preset, { ...config, ...runtime }, true, { teacher });
    teacher ??= stored.teacher;
    // The sub-runs it was started with, unless this process is told others (two processes may train
    // different sub-runs of one run side by side).
    if (!args.only && stored.only) {
      args.only = stored.only;
      console.log(`resuming the sub-runs the run was started with: ${stored.only.join(", ")} (--only overrides)`);
    }
  } else {
    ({ preset, config } = resolveConfig({ preset: args.preset, file: args.configFile, flags: args.flags }));
    // The loss registry loads tfjs: checked here, after --help and usage errors have answered.
    const { checkMethods } = await import("../train/check-methods.ts");
    checkMethods(config, teacher);
    runDir = args.runDir ?? join("runs", `${preset}-${timestamp()}`);
    openRunDir(runDir, preset, config, false, { teacher, only: args.only });
  }

  // The engine and training code load only now: --help and usage errors answer at once.
  const [{ startTrainingEngine }, { runPipeline }, { ProgressBar }] = await Promise.all([
    import("../engine/index.ts"),
    import("../train/pipeline.ts"),
    import("../train/progress.ts"),
  ]);
  // Runs stored before the field existed have no `convolutions`: auto.
  const engine = await startTrainingEngine(config.backend, {
    replicas: config.replicas || undefined,
    convolutions: config.convolutions ?? "auto",
  });
  let stopping = false;
  let stoppedAt = 0;
  const stop = (signal: string) => {
    // A second signal means "leave now" (the last checkpoint stands), but not one that arrives with
    // the first: npm and tsx pass a terminal's Ctrl-C or a `pkill` on to this process as well.
    if (stopping && Date.now() - stoppedAt > SIGNAL_ECHO_MS) process.exit(130);
    if (stopping) return;
    stopping = true;
    stoppedAt = Date.now();
    console.error(`\n${signal}: finishing the current step and saving a checkpoint (again to quit at once)`);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  let result: Awaited<ReturnType<typeof runPipeline>>;
  try {
    result = await runPipeline({
      runDir,
      preset,
      config,
      engine: { backend: engine.backend, device: engine.device },
      gradients: engine.gradients,
      only: args.only,
      teacherCheckpoint: teacher,
      teacherCacheDir: CACHE_DIR,
      progress: new ProgressBar(process.stderr, 30_000, args.progress),
      shouldStop: () => stopping,
    });
  } finally {
    await engine.close();
  }
  if (!result.finished) {
    console.error(`stopped; continue with: npm run distill -- --resume ${runDir}`);
    return 130;
  }
  const { writeCurves } = await import("../train/curves.ts");
  try {
    const { svg } = writeCurves(runDir);
    console.log(`curves: ${svg} (metrics.csv beside it)`);
  } catch (err) {
    // The training is done and saved; curves are drawn again by npm run curves.
    console.error(`curves not written: ${(err as Error).message}`);
  }
  if (args.export && args.only) {
    console.log(
      `export skipped: --only trains part of the run; export it when complete with npm run export -- ${runDir}`,
    );
  } else if (args.export) {
    const [{ exportRun }, { regenerateFromManifest }] = await Promise.all([
      import("../export/index.ts"),
      import("../../scripts/generated-from-manifest.ts"),
    ]);
    // The quick preset is the demo: its 2-epoch models go next to the run unless asked otherwise.
    const modelsDir = args.modelsDir ?? (preset === "quick" ? join(runDir, "models") : undefined);
    const { modelsDir: wrote, manifest } = await exportRun(runDir, {
      dataDir: config.data ?? undefined,
      modelsDir,
      force: args.force,
    });
    regenerateFromManifest(wrote, manifest);
    if (preset === "quick" && !args.modelsDir)
      console.log(
        `exported to ${wrote} (the shipped models/ are untouched; to serve these instead: npm run export -- ${runDir} --force)`,
      );
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`distill: ${err.message}`);
    process.exit(err instanceof UsageError || err instanceof ConfigError ? 2 : 1);
  },
);

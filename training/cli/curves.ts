// npm run curves -- <run dir> [--out DIR]
// Writes a run's metrics.csv and curves.svg (training/train/curves.ts) from its metrics.jsonl and its
// checkpoints' history, while it trains or after; reads the run, writes only those two files.
import { existsSync, statSync } from "node:fs";
import { parseArgs } from "node:util";

const USAGE = `usage: npm run curves -- <run dir> [--out DIR]

Writes metrics.csv (every record of the run's metrics.jsonl: sub-run, epoch, step, loss, its
cross-entropy and distillation parts, learning rate, images/s, validation accuracy or mAP) and
curves.svg (per epoch: training loss, training cross-entropy, validation accuracy; one line per
sub-run, distilled students solid, baselines dashed) into the run directory, or into --out DIR.
Epochs that metrics.jsonl lacks (runs from before it existed) come from the checkpoints' history.

options:
  --out DIR   where the two files go (default: the run directory)
  -h, --help  this text`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new Error(`expected one run directory, got ${positionals.length}\n\n${USAGE}`);
  const runDir = positionals[0]!;
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new Error(`${runDir}: no such run directory`);
  if (values.out !== undefined && existsSync(values.out) && !statSync(values.out).isDirectory())
    throw new Error(`--out ${values.out}: not a directory`);
  // Loaded after the arguments are checked: the loss registry brings tfjs.
  const { writeCurves } = await import("../train/curves.ts");
  const { csv, svg } = writeCurves(runDir, values.out);
  console.log(`wrote ${csv} and ${svg}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`curves: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

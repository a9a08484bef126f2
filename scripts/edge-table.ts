// The README's "At the edge" table, generated from `npm run bench -- --out docs/bench`'s edge.json
// (never typed by hand): one row per fp32 student with its int8 variant beside it. It sits between
// EDGE_BEGIN and EDGE_END; scripts/results-table.ts writes it together with the results table.

export const EDGE_BEGIN = "<!-- edge:begin (generated from docs/bench/edge.json by scripts/results-table.ts) -->";
export const EDGE_END = "<!-- edge:end -->";

/** The part of one model's figures in bench/edge.ts' edge.json that the tables read. */
export interface EdgeModel {
  model: string;
  sha256: string;
  inWorkerInference: { mean: number; n: number };
  precision?: "fp32" | "int8";
  /** The fp32 model whose onnxruntime-node figure the ratio uses: itself, or an int8 model's twin. */
  fp32Twin?: string;
  macs?: number;
  convolutions?: number;
  onnxruntimeNodeFp32?: { mean: number };
  workerOverhead?: { mean: number };
}

/** The part of edge.json the README reads. */
export interface EdgeBench {
  date: string;
  command: string;
  source?: string;
  machine?: { cpus: number };
  defaultStudent?: string;
  models: EdgeModel[];
}

const ms = (x: number) => x.toFixed(2);
const ratio = (x: number) => `${x.toFixed(2)}x`;

/**
 * The Markdown table; rows for fp32 models, in edge.json's order, the default first. Only files the
 * manifest ships (same sha256) are shown, so that a retrained model shows no stale figure.
 */
export function renderEdgeTable(bench: EdgeBench, shipped: ReadonlySet<string>): string {
  const measured = bench.models.filter((m) => shipped.has(m.sha256));
  const fp32 = measured.filter((m) => (m.precision ?? "fp32") === "fp32" && m.onnxruntimeNodeFp32 && m.workerOverhead);
  if (fp32.length === 0)
    return "_The shipped students have not been benchmarked yet: `npm run bench -- --out docs/bench`._";
  fp32.sort((a, b) => Number(b.model === bench.defaultStudent) - Number(a.model === bench.defaultStudent));
  const rows = fp32.map((m) => {
    const int8 = measured.find((q) => q.precision === "int8" && q.fp32Twin === m.model);
    const node = m.onnxruntimeNodeFp32!.mean;
    return [
      m.model === bench.defaultStudent ? `${m.model} (default)` : m.model,
      m.convolutions ?? "",
      m.macs === undefined ? "" : `${(m.macs / 1e6).toFixed(1)}M`,
      `${ms(m.inWorkerInference.mean)} / ${int8 ? ms(int8.inWorkerInference.mean) : "-"}`,
      node.toFixed(3),
      `${ratio(m.inWorkerInference.mean / node)} / ${int8 ? ratio(int8.inWorkerInference.mean / node) : "-"}`,
      ms(m.workerOverhead!.mean),
    ];
  });
  const header = [
    "student",
    "convs",
    "MACs",
    "in-Worker fp32 / int8 (ms)",
    "onnxruntime-node fp32 (ms)",
    "Worker fp32 / int8 over native fp32",
    "Worker overhead (ms)",
  ];
  const where = `\`${bench.command}\` on ${bench.date.slice(0, 10)}${bench.source ? `, models from \`${bench.source}\`` : ""}${bench.machine ? `, ${bench.machine.cpus} cores` : ""}`;
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    `Measured by ${where}: in-Worker is the mean of the Worker's own Server-Timing \`inference\` at c=1 ` +
      `(${fp32[0]!.inWorkerInference.n} requests), native is onnxruntime-node on one thread running the fp32 file, ` +
      "overhead is Server-Timing `total` minus `inference` at c=1.",
  ].join("\n");
}

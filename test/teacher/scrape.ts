// Reads a teacher host's /metrics with a parser that is not prom-client (the writer): prom2javascript,
// which refuses any line it cannot parse as Prometheus text. Looks samples up by labels.
import { Readable } from "node:stream";
import { type PromData, type PromHistogramData, type PromMetrics, getMetricsFromStream } from "prom2javascript";

const matches = (labels: Record<string, string>, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels[k] === v);

export class Scrape {
  constructor(readonly families: PromMetrics) {}

  static parse(text: string): Promise<Scrape> {
    return getMetricsFromStream(Readable.from([text])).then((families) => new Scrape(families));
  }

  static async of(url: string, token: string): Promise<Scrape> {
    const res = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`);
    return Scrape.parse(await res.text());
  }

  type(name: string): string {
    const f = this.families[name];
    if (!f) throw new Error(`no metric ${name} in the scrape`);
    return f.type;
  }

  /** A counter's or gauge's sample whose labels include `labels`; undefined when there is none. */
  sample(name: string, labels: Record<string, string> = {}): PromData | undefined {
    this.type(name);
    return (this.families[name]!.data as PromData[]).find((s) => matches(s.labels, labels));
  }

  /** A counter's or gauge's value (0 when the labelled sample does not exist yet). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.sample(name, labels)?.value ?? 0;
  }

  /** A histogram's series whose labels include `labels`: count, sum and cumulative buckets by `le`. */
  histogram(name: string, labels: Record<string, string> = {}): PromHistogramData {
    if (this.type(name) !== "histogram") throw new Error(`${name} is a ${this.type(name)}, not a histogram`);
    const s = (this.families[name]!.data as PromHistogramData[]).find((h) => matches(h.labels, labels));
    if (!s) throw new Error(`no series ${JSON.stringify(labels)} of ${name}`);
    return s;
  }
}

// How long the rest of a run takes: every epoch left in the sub-runs this process trains, each at the
// rate measured for its kind (same architecture, width and loss) in this run: live in the current
// epoch, else the last finished epoch's wall seconds, else the checkpoints' history on disk. A kind
// not measured yet takes the mean of its role's measured kinds, or the other role's scaled by the
// stated throughput of teachers and students (config/presets.ts); nothing measured: unknown.

/** Training images per wall-clock second (evaluation included) of a teacher and of a student. */
export interface Throughput {
  teacher: number;
  student: number;
}

export interface EtaSubRun {
  name: string;
  /** Sub-runs of one kind train at one rate: "<architecture> x<width> <loss>". */
  kind: string;
  role: "teacher" | "student";
  epochs: number;
  /** Epochs done so far (fractional inside an epoch). */
  done: number;
}

export interface RunRemaining {
  /** Wall-clock seconds; Infinity while nothing has been measured. */
  seconds: number;
  epochs: number;
  subRuns: number;
}

export function subRunKind(spec: { architecture: string; widthScale: number; loss: { name: string } }): string {
  return `${spec.architecture} x${spec.widthScale} ${spec.loss.name}`;
}

export class RunEta {
  /** Seconds per epoch by kind, the latest measurement. */
  private readonly rate = new Map<string, { role: EtaSubRun["role"]; seconds: number }>();
  private readonly subRuns: EtaSubRun[];

  constructor(
    subRuns: EtaSubRun[],
    private readonly prior: Throughput,
  ) {
    this.subRuns = subRuns.map((r) => ({ ...r }));
  }

  /** A measured epoch of a kind of sub-run: its wall seconds (or a live estimate of them). */
  observe(kind: string, role: EtaSubRun["role"], secondsPerEpoch: number): void {
    if (Number.isFinite(secondsPerEpoch) && secondsPerEpoch > 0)
      this.rate.set(kind, { role, seconds: secondsPerEpoch });
  }

  /** Where sub-run `name` stands (epochs done, fractional). */
  progress(name: string, done: number): void {
    const r = this.subRuns.find((s) => s.name === name);
    if (r) r.done = Math.min(r.epochs, done);
  }

  private secondsPerEpoch(r: EtaSubRun): number {
    const own = this.rate.get(r.kind);
    if (own) return own.seconds;
    const mean = (role: EtaSubRun["role"]) => {
      const s = [...this.rate.values()].filter((m) => m.role === role).map((m) => m.seconds);
      return s.length ? s.reduce((a, b) => a + b, 0) / s.length : null;
    };
    const same = mean(r.role);
    if (same !== null) return same;
    const other = r.role === "teacher" ? "student" : "teacher";
    const theirs = mean(other);
    return theirs === null ? Infinity : (theirs * this.prior[other]) / this.prior[r.role];
  }

  remaining(): RunRemaining {
    let seconds = 0;
    let epochs = 0;
    let subRuns = 0;
    for (const r of this.subRuns) {
      const left = r.epochs - r.done;
      if (left <= 0) continue;
      seconds += left * this.secondsPerEpoch(r);
      epochs += left;
      subRuns++;
    }
    return { seconds, epochs, subRuns };
  }
}

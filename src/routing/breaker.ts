// A circuit breaker per teacher endpoint, per isolate: after `faults` consecutive teacher faults it
// opens, and for `cooldownMs` the Worker does not call the teacher at all (the student answers at
// once instead of waiting out a timeout per request). Then one request is let through as a probe:
// its success closes the breaker, its fault opens it for another cool-down. Requests that arrive
// while the probe is out are kept away too.

export interface BreakerSettings {
  /** Consecutive faults that open the breaker. */
  faults: number;
  cooldownMs: number;
}

export type BreakerState = "closed" | "open" | "half_open";

/** "call": go ahead; "probe": go ahead as the one trial after a cool-down; "open": do not call. */
export type Admission = "call" | "probe" | "open";

export class CircuitBreaker {
  private consecutive = 0;
  private openedAt: number | undefined;
  private probing = false;

  constructor(private readonly now: () => number = Date.now) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return "closed";
    return this.probing ? "half_open" : "open";
  }

  admit(settings: BreakerSettings): Admission {
    if (this.openedAt === undefined) return "call";
    if (this.probing || this.now() - this.openedAt < settings.cooldownMs) return "open";
    this.probing = true;
    return "probe";
  }

  /** What a call admitted by admit() came to: `ok` false for a teacher fault. */
  record(admission: Exclude<Admission, "open">, ok: boolean, settings: BreakerSettings): void {
    if (admission === "probe") this.probing = false;
    if (ok) {
      this.consecutive = 0;
      this.openedAt = undefined;
      return;
    }
    this.consecutive++;
    if (this.openedAt !== undefined || this.consecutive >= settings.faults) this.openedAt = this.now();
  }
}

/** One breaker per teacher (URL and model), made on first use. */
export class Breakers {
  private readonly byTeacher = new Map<string, CircuitBreaker>();

  constructor(private readonly now: () => number = Date.now) {}

  for(url: string, model: string): CircuitBreaker {
    const key = `${url}\u0000${model}`;
    let breaker = this.byTeacher.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(this.now);
      this.byTeacher.set(key, breaker);
    }
    return breaker;
  }
}

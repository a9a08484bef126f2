// What a request costs on each arm, in US dollars per 1,000 requests, from the prices in the routing
// settings and what the measurements say. Pure arithmetic: the report hands in its figures.
//
// Every request is one Worker request, whichever arm answers it. Workers bill CPU time, not wall
// time, so waiting for the teacher costs the Worker nothing; the student's run is CPU time. The
// teacher's cost is GPU time: one GPU serving Q requests a second spends 1/Q GPU-seconds a request,
// at the GPU-hour price. That assumes the GPU is kept busy; a GPU idle half the time costs twice as
// much a request, so the teacher's figure is a floor.
//
//   request part  = workers $/M requests / 1e6
//   student run   = in-Worker ms a student run x workers $/M CPU-ms / 1e6
//   teacher run   = $/GPU-hour / 3600 / (requests a second one GPU serves)
//   student arm   = 1000 x (request part + student run)
//   teacher arm   = 1000 x (request part + teacher run)
//   split         = 1000 x (request part + s x (student run + h x teacher run) + (1 - s) x teacher run)
//                   (s: the student's share of clients, h: the shadow share of student answers)
//   window        = 1000 x (request part + (student runs x student run + teacher runs x teacher run) / requests)
//                   (what the window's runs cost: compare, forced, shadow runs and fallbacks included)

/** The prices; routing settings of the same names carry them (src/routing/settings.ts). */
export interface Prices {
  /** Workers: US dollars per million requests. */
  workersUsdPerMillionRequests: number;
  /** Workers: US dollars per million CPU milliseconds. */
  workersUsdPerMillionCpuMs: number;
  /** The teacher: US dollars per GPU-hour. */
  teacherUsdPerGpuHour: number;
  /** Requests a second one GPU serves with the teacher (batching on). */
  teacherRequestsPerGpuSecond: number;
}

/** The routing split the "split" figure prices. */
export interface Split {
  /** Share of clients routed to the student, 0..100. */
  studentPercent: number;
  /** Share of student-served requests also sent to the teacher, 0..100. */
  shadowPercent: number;
}

/** What the measurements say over a window. */
export interface Measured {
  /** Requests in the window. */
  requests: number;
  /** Student runs that reached the model, and their in-Worker milliseconds in all. */
  studentRuns: number;
  studentMs: number;
  /** Teacher runs that reached the teacher (calls the breaker or the rate limit stopped cost nothing). */
  teacherRuns: number;
}

/** US dollars per 1,000 requests, and its parts. */
export interface CostPerThousand {
  total: number;
  /** The Worker's per-request price. */
  workersRequests: number;
  /** The student's CPU time in the Worker. */
  workersCpu: number;
  /** The teacher's GPU time. */
  teacherGpu: number;
}

export interface CostReport {
  currency: "USD";
  prices: Prices;
  split: Split;
  /** Mean in-Worker milliseconds of a student run over the window; null without student runs. */
  studentMsPerRun: number | null;
  /** GPU-seconds a teacher request takes: 1 / teacherRequestsPerGpuSecond. */
  teacherGpuSecondsPerRun: number;
  perThousandRequests: {
    /** Null when the window has no student run to measure its CPU time by. */
    student: CostPerThousand | null;
    teacher: CostPerThousand;
    /** The current split; null when it routes to the student and no student run was measured. */
    split: CostPerThousand | null;
    /** What the window's requests cost; null without requests. */
    window: CostPerThousand | null;
  };
}

const PER_THOUSAND = 1000;

function perThousand(workersRequests: number, workersCpu: number, teacherGpu: number): CostPerThousand {
  const [r, c, g] = [workersRequests * PER_THOUSAND, workersCpu * PER_THOUSAND, teacherGpu * PER_THOUSAND];
  return { total: r + c + g, workersRequests: r, workersCpu: c, teacherGpu: g };
}

/** The cost per 1,000 requests of each arm, the split and the window (formulas above). */
export function costReport(prices: Prices, split: Split, measured: Measured): CostReport {
  const request = prices.workersUsdPerMillionRequests / 1e6;
  const studentMsPerRun = measured.studentRuns > 0 ? measured.studentMs / measured.studentRuns : null;
  const studentRun = studentMsPerRun === null ? null : (studentMsPerRun * prices.workersUsdPerMillionCpuMs) / 1e6;
  const teacherGpuSecondsPerRun = 1 / prices.teacherRequestsPerGpuSecond;
  const teacherRun = (prices.teacherUsdPerGpuHour / 3600) * teacherGpuSecondsPerRun;
  const s = split.studentPercent / 100;
  const h = split.shadowPercent / 100;
  // With no student traffic routed, the split needs no student measurement.
  const splitCost =
    s === 0
      ? perThousand(request, 0, teacherRun)
      : studentRun === null
        ? null
        : perThousand(request, s * studentRun, (s * h + 1 - s) * teacherRun);
  const windowCost =
    measured.requests > 0
      ? perThousand(
          request,
          ((studentRun ?? 0) * measured.studentRuns) / measured.requests,
          (teacherRun * measured.teacherRuns) / measured.requests,
        )
      : null;
  return {
    currency: "USD",
    prices: {
      workersUsdPerMillionRequests: prices.workersUsdPerMillionRequests,
      workersUsdPerMillionCpuMs: prices.workersUsdPerMillionCpuMs,
      teacherUsdPerGpuHour: prices.teacherUsdPerGpuHour,
      teacherRequestsPerGpuSecond: prices.teacherRequestsPerGpuSecond,
    },
    split: {
      studentPercent: split.studentPercent,
      shadowPercent: split.shadowPercent,
    },
    studentMsPerRun,
    teacherGpuSecondsPerRun,
    perThousandRequests: {
      student: studentRun === null ? null : perThousand(request, studentRun, 0),
      teacher: perThousand(request, 0, teacherRun),
      split: splitCost,
      window: windowCost,
    },
  };
}

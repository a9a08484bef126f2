// What createApp takes: the model store, and the options of the parts it mounts, each defined by its
// own module (the Worker sets them from its variables, config/worker-config.ts).
import type { ModelStore } from "./models/store.ts";
import type { RequestLogOptions } from "./middleware/request-log.ts";
import type { AbRoutingOptions } from "./routes/ab.ts";
import type { DashboardOptions } from "./routes/dashboard.ts";
import type { Limits } from "./routes/limits.ts";

export { DEFAULT_LIMITS, type Limits } from "./routes/limits.ts";

export interface AppOptions {
  store: ModelStore;
  limits?: Partial<Limits>;
  /** Origins allowed to call the API from a browser; none (CORS off) by default. "*" allows any. */
  corsOrigins?: string[];
  /** How GET /v2 names this server. */
  server?: { name: string; version: string };
  /**
   * A/B routing against a teacher served elsewhere (routes/ab.ts, routes/admin.ts, routes/keys.ts),
   * given the manifest entries of the models that host serves (their input specs and labels). Off
   * when absent.
   */
  abRouting?: AbRoutingOptions;
  /** The dashboard (routes/dashboard.ts), served at /dashboard beside A/B routing; off when absent. */
  dashboard?: DashboardOptions;
  /** The JSON line logged per request (middleware/request-log.ts); false turns it off. */
  requestLog?: RequestLogOptions | false;
}

// The dashboard's static files, bundled into the Worker as strings (wrangler.toml's Text rule) and
// served by it: uPlot from its npm package and the page's own script and styles. No CDN, so the page
// works offline under `wrangler dev`, and nothing outside the Worker's origin is allowed to run on it
// (see the Content-Security-Policy in src/routes/dashboard.ts).
import uplotScript from "uplot/dist/uPlot.iife.min.js";
import uplotStyles from "uplot/dist/uPlot.min.css";
import pageScript from "./static/dashboard.js";
import pageStyles from "./static/dashboard.css";
import type { StaticAsset } from "./static-asset.ts";

const script = (body: string): StaticAsset => ({ body, type: "text/javascript; charset=utf-8" });
const styles = (body: string): StaticAsset => ({ body, type: "text/css; charset=utf-8" });

/** By the name the page links them under, /dashboard/assets/<name>. */
export const DASHBOARD_ASSETS: Readonly<Record<string, StaticAsset>> = {
  "uplot.js": script(uplotScript),
  "uplot.css": styles(uplotStyles),
  "dashboard.js": script(pageScript),
  "dashboard.css": styles(pageStyles),
};

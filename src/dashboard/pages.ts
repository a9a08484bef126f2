// The dashboard's two pages, rendered on the server with Hono's html helper (every interpolated value
// is escaped): the sign-in form, and the dashboard's frame, which its script (static/dashboard.js)
// fills from GET <base>/data and refreshes. No inline script or style: the page's
// Content-Security-Policy allows only the Worker's own files.
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

/** The windows the dashboard offers, by their name in ?window=. */
export const WINDOWS = ["15m", "1h", "24h", "7d"] as const;
export type WindowName = (typeof WINDOWS)[number];

const head = (base: string, title: string, charts: boolean) => html`<head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="icon" href="data:," />
    ${charts ? html`<link rel="stylesheet" href="${base}/assets/uplot.css" />` : ""}
    <link rel="stylesheet" href="${base}/assets/dashboard.css" />
    ${charts ? html`<script src="${base}/assets/uplot.js" defer></script><script src="${base}/assets/dashboard.js" defer></script>` : ""}
  </head>`;

/** Signed out: the sign-in form alone, with why the last try failed, if it did. */
export function signInPage(base: string, message?: string): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`<!doctype html>
<html lang="en">
  ${head(base, "narrowdeep dashboard: sign in", false)}
  <body class="sign-in">
    <main>
      <h1>narrowdeep dashboard</h1>
      <form method="post" action="${base}/sign-in">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
        <button type="submit">Sign in</button>
      </form>
      ${message ? html`<p class="error" role="alert">${message}</p>` : ""}
      <p class="hint">The token is the Worker's <code>ADMIN_TOKEN</code> secret (<code>npm start</code> keeps it in <code>.dev.vars</code>).</p>
    </main>
  </body>
</html>`;
}

export interface DashboardPageOptions {
  base: string;
  window: WindowName;
  csrfToken: string;
  pollMs: number;
}

const csrfField = (token: string) => html`<input type="hidden" name="csrf" value="${token}" />`;

/** Signed in: the frame the script fills. Every figure the script writes has a data-field. */
export function dashboardPage({
  base,
  window,
  csrfToken,
  pollMs,
}: DashboardPageOptions): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`<!doctype html>
<html lang="en">
  ${head(base, "narrowdeep dashboard", true)}
  <body data-base="${base}" data-window="${window}" data-poll-ms="${pollMs}">
    <header>
      <h1>narrowdeep</h1>
      <nav aria-label="window">
        ${WINDOWS.map((w) => html`<a href="${base}?window=${w}" ${w === window ? html`aria-current="page"` : ""}>${w}</a>`)}
      </nav>
      <span id="status" data-field="status">loading…</span>
      <form method="post" action="${base}/sign-out">${csrfField(csrfToken)}<button type="submit">Sign out</button></form>
    </header>
    <main>
      <section id="routing">
        <h2>Split</h2>
        <p>
          Student <strong data-field="studentPercent">–</strong>% of clients, shadow
          <strong data-field="shadowPercent">–</strong>% of student answers
          <span class="muted" data-field="overridden"></span>
        </p>
        <form id="split-form" class="action-form" method="post" action="${base}/config" data-error="configError">
          ${csrfField(csrfToken)}
          <label>Student % <input name="studentPercent" type="number" min="0" max="100" step="1" required /></label>
          <label>Shadow % <input name="shadowPercent" type="number" min="0" max="100" step="1" required /></label>
          <button type="submit">Apply</button>
          <span class="error" role="alert" data-field="configError"></span>
        </form>
      </section>
      <section id="canary">
        <h2>Canary</h2>
        <div>
          <span data-field="canaryState">–</span>
          <form class="action-form inline" method="post" action="${base}/canary/pause" data-when="running" data-error="canaryError" hidden>
            ${csrfField(csrfToken)}<button type="submit">Pause</button>
          </form>
          <form class="action-form inline" method="post" action="${base}/canary/resume" data-when="paused" data-error="canaryError" hidden>
            ${csrfField(csrfToken)}<button type="submit">Resume</button>
          </form>
          <span class="error" role="alert" data-field="canaryError"></span>
        </div>
        <p class="muted" data-field="canarySettings"></p>
        <table>
          <thead>
            <tr><th>time</th><th>by</th><th>action</th><th>share %</th><th>agreement</th><th>p99 ms</th><th>error rate</th><th>pairs</th><th>reason</th></tr>
          </thead>
          <tbody id="canary-rows"></tbody>
        </table>
      </section>
      <section id="arms">
        <h2>Per arm, model version and reason</h2>
        <p class="muted" data-field="window"></p>
        <table>
          <thead>
            <tr>
              <th>arm</th><th>model</th><th>version</th><th>reason</th><th>runs</th><th>served</th><th>errors</th><th>error rate</th>
              <th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>agreement (95% CI)</th><th>pairs</th>
            </tr>
          </thead>
          <tbody id="arm-rows"></tbody>
        </table>
        <p class="muted">
          Requests <strong data-field="requests">–</strong>, teacher fallbacks <strong data-field="fallbacks">–</strong>.
          Latency counts every run that reached the model, failures at the time the Worker waited (a timeout at its
          timeout), as <code>GET /v1/report</code>'s <code>latencyMs</code>; the charts put an arm's reasons together.
        </p>
      </section>
      <section id="cost">
        <h2>Cost per 1,000 requests (US dollars)</h2>
        <table>
          <thead>
            <tr><th>arm</th><th>total</th><th>Workers requests</th><th>Workers CPU</th><th>teacher GPU</th></tr>
          </thead>
          <tbody id="cost-rows"></tbody>
        </table>
        <p class="muted" data-field="costBasis"></p>
        <p class="muted">
          As <code>GET /v1/report</code>'s <code>cost</code>: the student's CPU time is its mean in-Worker time in this window,
          the teacher's GPU time a request is one over the requests a second one GPU serves. Prices are settings
          (<code>PATCH /v1/config</code>); the formula is in docs/ab-testing.md.
        </p>
      </section>
      <section class="charts">
        <figure><figcaption>Runs and errors per interval</figcaption><div id="chart-volume"></div></figure>
        <figure><figcaption>Latency p50 / p95 / p99 (ms)</figcaption><div id="chart-latency"></div></figure>
        <figure><figcaption>Latency distribution (share of runs at or under, ms)</figcaption><div id="chart-cdf"></div></figure>
        <figure><figcaption>Top-1 agreement with the teacher, with its 95% Wilson interval</figcaption><div id="chart-agreement"></div></figure>
      </section>
      <section id="faults">
        <h2>Teacher faults by kind</h2>
        <table>
          <thead><tr><th>model</th><th>version</th><th>reason</th><th>fault</th><th>runs</th></tr></thead>
          <tbody id="fault-rows"></tbody>
        </table>
      </section>
    </main>
  </body>
</html>`;
}

/**
 * The status page, `GET /`: one HTML document with a little vanilla JavaScript that polls
 * `/-/plugins` every second. No build step, no framework. The API key, when the gateway has
 * one, is asked for once and kept in the tab's sessionStorage; the page never holds it in its
 * HTML.
 *
 * @module
 */

/** The page. */
export const STATUS_PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>plugwire gateway</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  .sub { color: #5b6474; margin-bottom: 1rem; }
  table { border-collapse: collapse; width: 100%; background: white; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
  th { background: #eef0f4; font-weight: 600; }
  .state { font-weight: 600; border-radius: 4px; padding: .1rem .45rem; display: inline-block; }
  .state-ready { background: #d9f5e1; color: #156a30; }
  .state-starting, .state-restarting { background: #fff1c9; color: #7a5b00; }
  .state-failed, .state-stopped, .state-stopping { background: #fde0e0; color: #8f1c1c; }
  .num { font-variant-numeric: tabular-nums; }
  .err { color: #8f1c1c; }
  pre { margin: .3rem 0 0; max-height: 10rem; overflow: auto; background: #1d2330; color: #dfe3ea; padding: .5rem; font-size: 12px; }
  #auth { display: none; margin: 1rem 0; }
  #auth input { width: 20rem; }
  #problem { color: #8f1c1c; }
</style>
</head>
<body>
<h1>plugwire gateway</h1>
<div class="sub">Plugins served by this gateway, refreshed every second. <span id="updated"></span></div>
<form id="auth">
  <label>API key <input id="key" type="password" autocomplete="off"></label>
  <button type="submit">Show status</button>
</form>
<p id="problem"></p>
<table id="plugins">
  <thead><tr>
    <th>Plugin</th><th>Kind</th><th>State</th><th>Version</th><th>PID</th><th>Uptime</th>
    <th>Restarts</th><th>Calls</th><th>Errors</th><th>Latency p50 / p99</th><th>Last log lines</th>
  </tr></thead>
  <tbody></tbody>
</table>
<script>
"use strict";
const tbody = document.querySelector("#plugins tbody");
const authForm = document.getElementById("auth");
const problem = document.getElementById("problem");
authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("plugwire-key", document.getElementById("key").value);
  authForm.style.display = "none";
  refresh();
});
function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}
function ms(v) { return v === null ? "-" : v.toFixed(1) + " ms"; }
function render(plugins) {
  tbody.replaceChildren();
  for (const p of plugins) {
    const row = document.createElement("tr");
    row.dataset.plugin = p.id;
    cell(row, p.id, "id");
    cell(row, p.kind, "kind");
    const state = cell(row, "", "state-cell");
    const badge = document.createElement("span");
    badge.className = "state state-" + p.state;
    badge.textContent = p.state;
    state.appendChild(badge);
    cell(row, p.version === null ? "-" : "v" + p.version + (p.tls ? " (mTLS)" : ""), "version");
    cell(row, p.pid === null ? "-" : String(p.pid), "pid num");
    cell(row, p.uptimeSeconds === null ? "-" : p.uptimeSeconds.toFixed(0) + " s", "uptime num");
    cell(row, String(p.restarts), "restarts num");
    cell(row, String(p.calls), "calls num");
    cell(row, String(p.errors), "errors num");
    cell(row, ms(p.latencyMs.p50) + " / " + ms(p.latencyMs.p99), "latency num");
    const logs = cell(row, "", "logs");
    if (p.lastError) {
      const e = document.createElement("div");
      e.className = "err";
      e.textContent = p.lastError;
      logs.appendChild(e);
    }
    if (p.logs.length) {
      const pre = document.createElement("pre");
      pre.textContent = p.logs.slice(-5).join("\\n");
      logs.appendChild(pre);
    }
    tbody.appendChild(row);
  }
}
let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const key = sessionStorage.getItem("plugwire-key");
    const headers = key ? { authorization: "Bearer " + key } : {};
    const response = await fetch("/-/plugins", { headers, cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      authForm.style.display = "block";
      problem.textContent = response.status === 403 ? "That API key is not valid." : "";
      return;
    }
    if (!response.ok) {
      problem.textContent = "The gateway answered " + response.status + ".";
      return;
    }
    problem.textContent = "";
    render((await response.json()).plugins);
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  } catch (err) {
    problem.textContent = "The gateway is not reachable.";
  } finally {
    busy = false;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;

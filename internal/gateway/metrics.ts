/**
 * `/-/metrics` in the Prometheus text exposition format (version 0.0.4).
 *
 * @module
 */

import { LATENCY_BUCKETS, type PluginSlot } from "./slot.ts";

function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** The metrics of every plugin slot. */
export function prometheusText(slots: Iterable<PluginSlot>, uptimeSeconds: number): string {
  const all = [...slots];
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  family("plugwire_gateway_uptime_seconds", "gauge", "Seconds since the gateway started.");
  out.push(`plugwire_gateway_uptime_seconds ${uptimeSeconds}`);
  family("plugwire_plugin_up", "gauge", "1 when the plugin has a ready instance.");
  for (const s of all) {
    out.push(
      `plugwire_plugin_up{plugin="${label(s.id)}",kind="${s.kind}"} ${s.current ? 1 : 0}`,
    );
  }
  family("plugwire_plugin_requests_total", "counter", "Requests answered by the plugin.");
  for (const s of all) {
    out.push(`plugwire_plugin_requests_total{plugin="${label(s.id)}"} ${s.calls}`);
  }
  family("plugwire_plugin_errors_total", "counter", "Requests that failed.");
  for (const s of all) {
    out.push(`plugwire_plugin_errors_total{plugin="${label(s.id)}"} ${s.errors}`);
  }
  family("plugwire_plugin_restarts_total", "counter", "Restarts after a crash.");
  for (const s of all) {
    out.push(`plugwire_plugin_restarts_total{plugin="${label(s.id)}"} ${s.restarts}`);
  }
  family("plugwire_plugin_in_flight", "gauge", "Requests in flight.");
  for (const s of all) out.push(`plugwire_plugin_in_flight{plugin="${label(s.id)}"} ${s.active}`);
  family(
    "plugwire_plugin_request_duration_seconds",
    "histogram",
    "Time from routing to the last byte of the plugin's answer.",
  );
  for (const s of all) {
    const id = label(s.id);
    const h = s.histogram;
    LATENCY_BUCKETS.forEach((le, i) => {
      out.push(
        `plugwire_plugin_request_duration_seconds_bucket{plugin="${id}",le="${le}"} ${
          h.buckets[i]
        }`,
      );
    });
    out.push(
      `plugwire_plugin_request_duration_seconds_bucket{plugin="${id}",le="+Inf"} ${h.count}`,
      `plugwire_plugin_request_duration_seconds_sum{plugin="${id}"} ${h.sumSeconds}`,
      `plugwire_plugin_request_duration_seconds_count{plugin="${id}"} ${h.count}`,
    );
  }
  return out.join("\n") + "\n";
}

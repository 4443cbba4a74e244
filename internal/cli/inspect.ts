/**
 * `plugwire inspect`: start a plugin and show what a host learns from it, then stop it.
 *
 * @module
 */

import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../gen/core/grpc/health/v1/health_pb.ts";
import type { PluginClient } from "../client.ts";
import { handshakeDiagnostics } from "../diagnostics.ts";
import { loadServices } from "../dynamic.ts";
import { PluginError } from "../errors.ts";
import { toRpcError } from "../grpc.ts";
import type { HandshakeInfo } from "../handshake.ts";
import { PLUGIN_HEALTH_SERVICE } from "../health.ts";
import type { LogRecord } from "../hclog.ts";
import { resolveExecutable } from "../runtime.ts";
import type { HostSettings } from "./args.ts";
import { type CertificateInfo, certificateSummary, describeCertificate } from "./cert.ts";
import {
  connectTo,
  type Launch,
  launch,
  readHandshake,
  stopPlugin,
  type StopReport,
} from "./launch.ts";
import { paint, withProgress } from "./output.ts";
import type { CliIo } from "./system.ts";

/** The names of the handshake line's fields, in order. */
export const HANDSHAKE_FIELDS = [
  "core-version",
  "app-version",
  "network",
  "address",
  "protocol",
  "certificate",
  "multiplex",
] as const;

/** What `inspect` found (its `--json` output). */
export interface InspectReport {
  command: string[];
  /** How long the plugin took to print its handshake line. */
  startMs?: number;
  /** The raw first stdout line. */
  handshakeLine?: string;
  /** Each field of the line, by name. */
  fields?: Record<string, string>;
  /** The negotiated version and the ones offered. */
  version?: { negotiated: number; offered: number[] };
  network?: string;
  address?: string;
  tls?: { mode: "mutual" | "none"; certificate?: CertificateInfo };
  connectMs?: number;
  health?: { status: string } | { error: string };
  reflection?: {
    version: string;
    services: {
      service: string;
      internal: boolean;
      methods: { name: string; kind: string; input: string; output: string }[];
      error?: string;
    }[];
  } | { error: string };
  log: { level: string; message: string; module?: string; fields: Record<string, unknown> }[];
  stop?: StopReport;
  /** The exit status when the plugin ended before its handshake. */
  exitedEarly?: { code: number | null; signal: string | null };
  /** What went wrong, when something did. */
  errors: string[];
  /** go-plugin's notes on the executable, when it printed no handshake line a host accepts. */
  diagnostics?: string;
}

function logOf(records: LogRecord[]): InspectReport["log"] {
  return records.map((r) => ({
    level: r.level,
    message: r.message,
    ...(r.module ? { module: r.module } : {}),
    fields: r.fields,
  }));
}

/** Runs `inspect`; returns the exit status. */
export async function inspect(settings: HostSettings, io: CliIo, json: boolean): Promise<number> {
  const report: InspectReport = { command: settings.cmd, log: [], errors: [] };
  const launched = await withProgress(io, "starting the plugin", () => launch(settings));
  let client: PluginClient | undefined;
  try {
    await examine(launched, settings, report, io, (c) => (client = c));
  } finally {
    if (launched.outcome.kind === "line") {
      report.stop = await withProgress(
        io,
        "stopping the plugin",
        () => stopPlugin(launched, client),
      );
    }
    await Promise.race([launched.stderrDone, new Promise((r) => setTimeout(r, 300))]);
    report.log = logOf(launched.records);
    await launched.dispose();
  }
  if (json) io.stdout(JSON.stringify(report, null, 2) + "\n");
  else io.stdout(renderInspect(report, io));
  return report.errors.length ? 1 : 0;
}

async function examine(
  launched: Launch,
  settings: HostSettings,
  report: InspectReport,
  io: CliIo,
  keep: (client: PluginClient) => void,
): Promise<void> {
  const { outcome } = launched;
  report.startMs = launched.startMs;
  if (outcome.kind === "exit") {
    report.exitedEarly = outcome.status;
    report.diagnostics = await handshakeDiagnostics(resolveExecutable(settings.cmd[0]));
    report.errors.push(
      `the plugin exited before printing its handshake line (${exitText(outcome.status)})` +
        (launched.records.length ? "; see its stderr below" : "") +
        hintForCookie(launched),
    );
    return;
  }
  if (outcome.kind === "timeout") {
    report.errors.push(
      `the plugin printed no handshake line within ${settings.timeoutMs} ms (--timeout)`,
    );
    return;
  }
  report.handshakeLine = outcome.line;
  const parts = outcome.line.trim().split("|");
  report.fields = Object.fromEntries(
    parts.map((p, i) => [HANDSHAKE_FIELDS[i] ?? `field-${i + 1}`, p]),
  );
  let info: HandshakeInfo;
  try {
    info = readHandshake(launched, settings);
  } catch (err) {
    report.errors.push((err as Error).message);
    if (err instanceof PluginError && err.code === "unrecognized-handshake") {
      report.diagnostics = await handshakeDiagnostics(resolveExecutable(settings.cmd[0]));
    }
    return;
  }
  report.version = { negotiated: info.appVersion, offered: settings.versions };
  report.network = info.network;
  report.address = info.address;
  if (settings.network && info.network !== settings.network) {
    report.errors.push(`expected network ${settings.network} (--network), got ${info.network}`);
  }
  if (info.serverCert) {
    let certificate: CertificateInfo | undefined;
    try {
      certificate = describeCertificate(info.serverCert);
    } catch (err) {
      report.errors.push(`the plugin's certificate cannot be parsed: ${(err as Error).message}`);
    }
    report.tls = { mode: launched.hostCert ? "mutual" : "none", certificate };
    if (!launched.hostCert) {
      report.errors.push("the plugin returned a certificate although no AutoMTLS was asked for");
      return;
    }
  } else {
    report.tls = { mode: "none" };
    if (launched.hostCert) {
      report.errors.push(
        "AutoMTLS was asked for (--auto-mtls) but the plugin returned no certificate; " +
          "a plugwire host refuses to fall back to plaintext",
      );
      return;
    }
  }
  const t0 = Date.now();
  let client: PluginClient;
  try {
    client = await withProgress(io, "connecting", () => connectTo(launched, info, settings));
  } catch (err) {
    report.errors.push((err as Error).message);
    return;
  }
  keep(client);
  report.connectMs = Date.now() - t0;
  try {
    const { status } = await client.client(Health).check({ service: PLUGIN_HEALTH_SERVICE }, {
      timeoutMs: settings.timeoutMs,
    });
    report.health = { status: HealthCheckResponse_ServingStatus[status] ?? String(status) };
  } catch (err) {
    report.health = { error: toRpcError(err).message };
  }
  try {
    const services = await withProgress(
      io,
      "reading reflection",
      () => loadServices(client, { timeoutMs: settings.timeoutMs }),
    );
    report.reflection = {
      version: services.reflectionVersion,
      services: services.list().map((s) => ({
        service: s.service,
        internal: s.internal,
        methods: s.methods.map((m) => ({
          name: m.name,
          kind: m.kind,
          input: m.input,
          output: m.output,
        })),
        ...(s.error ? { error: s.error } : {}),
      })),
    };
  } catch (err) {
    report.reflection = { error: (err as Error).message };
  }
}

function exitText(status: { code: number | null; signal: string | null }): string {
  return status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`;
}

/** A Go plugin without its cookie says "This binary is a plugin": point at --cookie. */
function hintForCookie(launched: Launch): string {
  return launched.records.some((r) => r.raw.includes("This binary is a plugin"))
    ? "; it says it did not get its magic cookie: check --cookie KEY=VALUE"
    : "";
}

/** The text form of a report. */
export function renderInspect(report: InspectReport, io: CliIo): string {
  const c = paint(io, "stdout");
  const out: string[] = [];
  const row = (label: string, value: string) => out.push(`${c.bold(label.padEnd(16))} ${value}`);
  row("command", report.command.join(" "));
  if (report.exitedEarly) row("exited", exitText(report.exitedEarly));
  if (report.handshakeLine !== undefined) {
    row("handshake line", JSON.stringify(report.handshakeLine));
    for (const [name, value] of Object.entries(report.fields ?? {})) {
      const shown = name === "certificate" && value.length > 60
        ? `${value.slice(0, 24)}…${value.slice(-8)} (${value.length} chars, ` +
          `${value.endsWith("=") ? "padded" : "unpadded"} base64)`
        : value === ""
        ? c.dim("(empty)")
        : value;
      row(`  ${name}`, shown);
    }
    row("  took", `${report.startMs} ms`);
  }
  if (report.version) {
    row("version", `${report.version.negotiated} (offered ${report.version.offered.join(",")})`);
  }
  if (report.network) row("transport", `${report.network} ${report.address}`);
  if (report.tls) {
    row(
      "tls",
      report.tls.mode === "mutual" ? "mutual TLS (AutoMTLS)" : c.dim("none (plaintext)"),
    );
    if (report.tls.certificate) {
      row("  certificate", certificateSummary(report.tls.certificate));
      row("  sha-256", report.tls.certificate.sha256);
    }
  }
  if (report.connectMs !== undefined) row("connected", `in ${report.connectMs} ms`);
  if (report.health) {
    row(
      "health",
      "status" in report.health
        ? `plugin: ${
          report.health.status === "SERVING" ? c.green("SERVING") : c.yellow(report.health.status)
        }`
        : c.red(report.health.error),
    );
  }
  if (report.reflection) {
    if ("error" in report.reflection) row("services", c.yellow(report.reflection.error));
    else {
      row("services", `reflection ${report.reflection.version}`);
      const services = [...report.reflection.services].sort((a, b) =>
        Number(a.internal) - Number(b.internal)
      );
      for (const s of services) {
        out.push(`  ${s.internal ? c.dim(s.service + " (go-plugin)") : c.bold(s.service)}`);
        if (s.error) out.push(`    ${c.yellow(s.error)}`);
        for (const m of s.methods) {
          const kind = m.kind === "unary" ? "" : ` [${m.kind.replace("_", "-")}]`;
          out.push(`    ${m.name}(${m.input}) → ${m.output}${kind}`);
        }
      }
    }
  }
  if (report.stop) {
    const how = {
      "shutdown": "by Shutdown",
      "sigterm": "by SIGTERM",
      "sigkill": "by SIGKILL",
      "already-exited": "it had already exited",
    }[report.stop.how];
    row("stopped", `${how}, ${exitText(report.stop.exit)}`);
    for (const step of report.stop.steps) {
      const rpc = step.rpc ? `, reply ${step.rpc}` : "";
      row(`  ${step.step}`, `${step.ms} ms${step.exited ? ", exited" : ", still running"}${rpc}`);
    }
  }
  row("stderr", report.log.length ? `${report.log.length} records` : c.dim("(nothing)"));
  for (const r of report.log) {
    const fields = Object.entries(r.fields).map(([k, v]) =>
      `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
    ).join(" ");
    const tag = `[${r.level.toUpperCase()}]`.padEnd(7);
    out.push(
      `  ${tag} ${r.module ? r.module + ": " : ""}${r.message}${fields ? ": " + fields : ""}`,
    );
  }
  for (const e of report.errors) out.push(`${c.red("error")}: ${e}`);
  if (report.diagnostics) out.push(report.diagnostics.trimEnd());
  return out.join("\n") + "\n";
}

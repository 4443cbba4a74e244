/**
 * `plugwire check`: a conformance report on a plugin, one verdict per protocol point. It starts
 * the plugin several times, changing one thing each time (no cookie, one version, an unknown
 * version, a client certificate), and never lets a misbehaving plugin crash the report: every
 * point ends PASS, FAIL (expected, got) or SKIP (why).
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../gen/core/grpc/health/v1/health_pb.ts";
import { GRPCBroker } from "../../gen/core/plugin/grpc_broker_pb.ts";
import { GRPCStdio } from "../../gen/core/plugin/grpc_stdio_pb.ts";
import type { PluginClient } from "../client.ts";
import { loadServices } from "../dynamic.ts";
import { PluginError, Status } from "../errors.ts";
import { toRpcError } from "../grpc.ts";
import type { HandshakeInfo } from "../handshake.ts";
import { PLUGIN_HEALTH_SERVICE } from "../health.ts";
import type { Certificate } from "../mtls.ts";
import { derToPem } from "../pem.ts";
import { AsyncQueue } from "../queue.ts";
import type { HostSettings } from "./args.ts";
import { certificateSummary, describeCertificate } from "./cert.ts";
import {
  connectTo,
  type Launch,
  launch,
  type LaunchVariation,
  newCertificate,
  readHandshake,
  stopPlugin,
  type StopReport,
} from "./launch.ts";
import { paint, withProgress } from "./output.ts";
import { type CliIo, listTree, pathPresent, processGroupMembers } from "./system.ts";

/** A verdict. */
export type Verdict = "PASS" | "FAIL" | "SKIP";

/** One protocol point's result. */
export interface CheckResult {
  /** The point, e.g. `cookie`. */
  id: string;
  verdict: Verdict;
  /** What was seen (PASS), why it was skipped (SKIP), or a summary (FAIL). */
  detail: string;
  /** With FAIL: what a conforming plugin does. */
  expected?: string;
  /** With FAIL: what this one did. */
  got?: string;
}

/** The AutoMTLS points: the certificate first, then what depends on it. */
const MTLS_POINTS = [
  "mtls-certificate",
  "mtls-connect",
  "mtls-client-cert-required",
  "mtls-wrong-cert-refused",
] as const;

/** The points, in report order. */
export const CHECK_POINTS = [
  "cookie",
  "handshake-line",
  "network",
  "version-negotiation",
  "version-refusal",
  "unix-socket-dir",
  "tcp-port-range",
  "health",
  ...MTLS_POINTS,
  "reflection",
  "stdio-stream",
  "broker-stream",
  "shutdown",
  "leftovers",
] as const;

/** go-plugin's refusal without the cookie (server.go), first line. */
const COOKIE_MESSAGE = "This binary is a plugin. These are not meant to be executed directly.";

class Results {
  readonly #byId = new Map<string, CheckResult>();
  pass(id: string, detail: string): void {
    this.#byId.set(id, { id, verdict: "PASS", detail });
  }
  fail(id: string, detail: string, expected: string, got: string): void {
    this.#byId.set(id, { id, verdict: "FAIL", detail, expected, got });
  }
  skip(id: string, detail: string): void {
    if (!this.#byId.has(id)) this.#byId.set(id, { id, verdict: "SKIP", detail });
  }
  has(id: string): boolean {
    return this.#byId.has(id);
  }
  /** What sessions left behind, each prefixed with its session; checked: a session stopped. */
  readonly leftovers: string[] = [];
  leftoversChecked = false;
  processesChecked = true;
  decideLeftovers(): void {
    if (this.leftovers.length) {
      // The normal session first, whichever finished first.
      const ordered = [...this.leftovers].sort((a, b) =>
        Number(a.startsWith("after")) - Number(b.startsWith("after"))
      );
      this.fail("leftovers", "things left after it exited", "nothing", ordered.join("; "));
    } else if (this.leftoversChecked) {
      this.pass(
        "leftovers",
        this.processesChecked
          ? "no socket, temp file or process left"
          : "no socket or temp file left (processes not checked on this OS)",
      );
    }
  }
  verdictOf(id: string): Verdict | undefined {
    return this.#byId.get(id)?.verdict;
  }
  all(): CheckResult[] {
    for (const id of CHECK_POINTS) this.skip(id, "not reached");
    return CHECK_POINTS.map((id) => this.#byId.get(id)!);
  }
}

const exitText = (s: { code: number | null; signal: string | null }) =>
  s.signal ? `killed by ${s.signal}` : `exit status ${s.code}`;

function firstStderr(launched: Launch): string {
  const line = launched.records.find((r) => r.raw.trim())?.raw.trim();
  return line ? JSON.stringify(line.length > 160 ? line.slice(0, 160) + "…" : line) : "nothing";
}

/** Runs `check`; returns the exit status. */
export async function check(settings: HostSettings, io: CliIo, json: boolean): Promise<number> {
  const results = new Results();
  const launches: Launch[] = [];
  const start: Start = async (variation = {}) => {
    const launched = await launch(settings, variation);
    launches.push(launched);
    return launched;
  };
  try {
    // The sessions are independent: the plugin without its cookie, normally, with an unknown
    // version and with a client certificate run side by side; the single-version probes need
    // the normal session's answer, so they come after.
    await withProgress(io, "checking the plugin", async () => {
      let main: { appVersion?: number } = {};
      const sessions = await Promise.allSettled([
        checkCookie(settings, results, start),
        checkMainSession(settings, results, start).then((m) => void (main = m)),
        checkRefusal(settings, results, start),
        settings.autoMtls ? Promise.resolve() : checkMtls(settings, results, start),
      ]);
      const failed = sessions.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
      await checkNegotiation(settings, results, start, main);
    });
    results.decideLeftovers();
  } catch (err) {
    // The command cannot be started at all: no report to give, only that.
    if (
      err instanceof PluginError && err.code === "exited-before-connect" &&
      err.message.startsWith("cannot start")
    ) {
      for (const l of launches) await l.dispose();
      throw err;
    }
    // A bug of ours or an unexpected failure: reported, never a crash.
    results.fail(
      nextOpenPoint(results),
      "the check itself failed",
      "no error",
      (err as Error)?.message ?? String(err),
    );
  } finally {
    for (const l of launches) await l.dispose();
  }
  const all = results.all();
  const summary = {
    passed: all.filter((r) => r.verdict === "PASS").length,
    failed: all.filter((r) => r.verdict === "FAIL").length,
    skipped: all.filter((r) => r.verdict === "SKIP").length,
  };
  if (json) {
    io.stdout(JSON.stringify({ command: settings.cmd, results: all, ...summary }, null, 2) + "\n");
  } else {
    io.stdout(renderCheck(all, summary, io));
  }
  return summary.failed ? 1 : 0;
}

function nextOpenPoint(results: Results): string {
  return CHECK_POINTS.find((id) => !results.has(id)) ?? "leftovers";
}

type Start = (variation?: LaunchVariation) => Promise<Launch>;

async function checkCookie(settings: HostSettings, results: Results, start: Start) {
  const id = "cookie";
  const expected = `exit status 1 with go-plugin's message "${COOKIE_MESSAGE}"`;
  const launched = await start({ env: { [settings.cookie.key]: undefined } });
  const { outcome } = launched;
  if (outcome.kind === "line") {
    results.fail(
      id,
      "it started without its cookie",
      expected,
      `handshake ${JSON.stringify(outcome.line)}`,
    );
  } else if (outcome.kind === "timeout") {
    results.fail(
      id,
      "it kept running without its cookie",
      expected,
      `still running after ${settings.timeoutMs} ms, no output`,
    );
  } else {
    const said = launched.records.some((r) => r.raw.includes(COOKIE_MESSAGE));
    if (outcome.status.code === 1 && said) {
      results.pass(
        id,
        `refuses to run without ${settings.cookie.key}: exit 1, go-plugin's message`,
      );
    } else {
      results.fail(
        id,
        "it refuses, but not as go-plugin plugins do",
        expected,
        `${exitText(outcome.status)}, stderr ${firstStderr(launched)}`,
      );
    }
  }
  await launched.dispose();
}

/** Field-level checks of a handshake line beyond what a host needs to accept it. */
function lineProblems(line: string, certRequested: boolean): string[] {
  const problems: string[] = [];
  const parts = line.trim().split("|");
  if (parts.length === 7) {
    problems.push(
      "7 fields although PLUGIN_MULTIPLEX_GRPC was not set (hosts before go-plugin 1.6 read " +
        "field 6 as `cert|mux`)",
    );
  } else if (parts.length > 7) problems.push(`${parts.length} fields (at most 7)`);
  const cert = parts[5] ?? "";
  if (cert.endsWith("=")) {
    problems.push("padded base64 certificate (go-plugin decodes field 6 with RawStdEncoding)");
  }
  if (!certRequested && cert.length > 50) {
    problems.push("a certificate although none was asked for");
  }
  if (line !== line.trim()) problems.push("whitespace around the line");
  return problems;
}

async function checkMainSession(
  settings: HostSettings,
  results: Results,
  start: Start,
): Promise<{ appVersion?: number }> {
  // A narrow, random port window, so a TCP plugin shows whether it honours it.
  const base = 20000 + Math.floor(Math.random() * 400) * 50;
  const ports: [number, number] = [base, base + 49];
  const launched = await start({ ports });
  const { outcome } = launched;
  const noSession = "no session: the plugin did not complete its handshake";
  const skipRest = (why: string) => {
    for (
      const id of [
        "network",
        "version-negotiation",
        "unix-socket-dir",
        "tcp-port-range",
        "health",
        "reflection",
        "stdio-stream",
        "broker-stream",
        "shutdown",
        "leftovers",
      ]
    ) results.skip(id, why);
    if (settings.autoMtls) {
      for (const id of MTLS_POINTS) {
        results.skip(id, why);
      }
    }
  };
  const expectedLine = "1|<version>|unix or tcp|<address>|grpc|<certificate or empty>";
  if (outcome.kind !== "line") {
    results.fail(
      "handshake-line",
      "no handshake line",
      expectedLine,
      outcome.kind === "timeout"
        ? `nothing within ${settings.timeoutMs} ms`
        : `${exitText(outcome.status)} first, stderr ${firstStderr(launched)}`,
    );
    skipRest(noSession);
    return {};
  }
  let info: HandshakeInfo;
  try {
    info = readHandshake(launched, settings);
  } catch (err) {
    if (err instanceof PluginError && err.code === "incompatible-app-version") {
      // A well-formed line with a version the host did not offer: go-plugin's answer when
      // nothing is in common, so the versions asked for are the problem, not the line.
      const answered = outcome.line.split("|")[1];
      results.pass("handshake-line", JSON.stringify(outcome.line));
      results.fail(
        "version-negotiation",
        "no version in common; run check with --versions the plugin serves",
        `one of ${settings.versions.join(",")}`,
        `version ${answered}`,
      );
      skipRest(`no session: no version in common (the plugin answered ${answered})`);
      return {};
    }
    results.fail(
      "handshake-line",
      "a host rejects the line",
      expectedLine,
      `${JSON.stringify(outcome.line)}: ${(err as Error).message.split("\n")[0]}`,
    );
    skipRest(noSession);
    return {};
  }
  const problems = lineProblems(outcome.line, launched.hostCert !== undefined);
  if (problems.length) {
    results.fail(
      "handshake-line",
      "accepted by go-plugin hosts, with flaws",
      expectedLine,
      problems.join("; "),
    );
  } else {
    results.pass(
      "handshake-line",
      JSON.stringify(outcome.line.length > 90 ? outcome.line.slice(0, 90) + "…" : outcome.line),
    );
  }

  if (!settings.network) results.skip("network", "no --network given");
  else if (info.network === settings.network) results.pass("network", `listens on ${info.network}`);
  else results.fail("network", "not the network asked for", settings.network, info.network);

  if (settings.versions.length === 1) {
    const [v] = settings.versions;
    if (info.appVersion === v) results.pass("version-negotiation", `offered ${v} → ${v}`);
    else {results.fail(
        "version-negotiation",
        "not the only version offered",
        String(v),
        String(info.appVersion),
      );}
  }

  if (info.network === "unix") {
    const inside = info.address.startsWith(launched.socketDir + "/");
    if (inside) results.pass("unix-socket-dir", "its socket is in PLUGIN_UNIX_SOCKET_DIR");
    else {
      results.fail(
        "unix-socket-dir",
        "PLUGIN_UNIX_SOCKET_DIR ignored",
        `a socket in ${launched.socketDir}/`,
        info.address,
      );
    }
    results.skip(
      "tcp-port-range",
      "the plugin listens on unix (go-plugin plugins use TCP only on Windows); make it offer TCP " +
        "to check PLUGIN_MIN_PORT/PLUGIN_MAX_PORT",
    );
  } else {
    results.skip("unix-socket-dir", "the plugin listens on tcp");
    const colon = info.address.lastIndexOf(":");
    const host = info.address.slice(0, colon).replace(/^\[|\]$/g, "");
    const port = Number(info.address.slice(colon + 1));
    const loopback = host === "127.0.0.1" || host === "::1" || host === "localhost";
    if (port >= ports[0] && port <= ports[1] && loopback) {
      results.pass("tcp-port-range", `port ${port} in ${ports[0]}-${ports[1]}, on ${host}`);
    } else {
      results.fail(
        "tcp-port-range",
        "PLUGIN_MIN_PORT/PLUGIN_MAX_PORT not honoured",
        `127.0.0.1:<port in ${ports[0]}-${ports[1]}>`,
        info.address,
      );
    }
  }

  if (settings.autoMtls) await mtlsPoints(launched, info, results);
  else if (info.serverCert) {
    results.fail(
      "handshake-line",
      "a certificate without AutoMTLS",
      "an empty field 6",
      "a certificate",
    );
  }

  let client: PluginClient | undefined;
  if (!settings.autoMtls || results.verdictOf("mtls-connect") === "PASS") {
    try {
      client = await connectTo(launched, info, settings);
    } catch (err) {
      const why = `cannot connect: ${(err as Error).message.split("\n")[0]}`;
      for (const id of ["health", "reflection", "stdio-stream", "broker-stream"]) {
        results.fail(id, "no connection", "a gRPC connection", why);
      }
    }
  }
  if (client) await sessionPoints(client, settings, results);
  else {
    for (const id of ["health", "reflection", "stdio-stream", "broker-stream"]) {
      results.skip(id, "no connection (see mtls-connect)");
    }
  }

  // Whatever the plugin spawned, seen while it runs (its process group).
  const stop = await stopPlugin(launched, client);
  shutdownPoint(stop, client !== undefined, results);
  leftoverPoint(launched, info, results);
  await launched.dispose();
  return { appVersion: info.appVersion };
}

async function sessionPoints(
  client: PluginClient,
  settings: HostSettings,
  results: Results,
) {
  const timeoutMs = Math.min(settings.timeoutMs, 10_000);
  try {
    const { status } = await client.client(Health).check({ service: PLUGIN_HEALTH_SERVICE }, {
      timeoutMs,
    });
    const name = HealthCheckResponse_ServingStatus[status] ?? String(status);
    if (status === HealthCheckResponse_ServingStatus.SERVING) {
      results.pass("health", `Check("plugin"): SERVING`);
    } else results.fail("health", `Check("plugin") answered`, "SERVING", name);
  } catch (err) {
    results.fail("health", `Check("plugin") failed`, "SERVING", toRpcError(err).message);
  }

  try {
    const services = await loadServices(client, { timeoutMs });
    const own = services.list().filter((s) => !s.internal).map((s) => s.service);
    results.pass(
      "reflection",
      `${services.reflectionVersion}: ${services.list().length} services` +
        (own.length ? ` (${own.join(", ")})` : ""),
    );
  } catch (err) {
    results.fail(
      "reflection",
      "no reflection (go-plugin serves grpc.reflection.v1 and v1alpha)",
      "grpc.reflection.v1 or v1alpha",
      (err as Error).message.split(":")[0],
    );
  }

  // The host already holds one stdio and one broker stream (opened on connect, like
  // go-plugin's); a second, short-lived call of each shows whether the service is there.
  const stdio = await probeStream(() =>
    client.client(GRPCStdio).streamStdio({}, { timeoutMs: 500 })
  );
  if (stdio.present) results.pass("stdio-stream", `GRPCStdio.StreamStdio served (${stdio.how})`);
  else {results.fail(
      "stdio-stream",
      "GRPCStdio.StreamStdio not served",
      "an open stream",
      stdio.how,
    );}

  const outgoing = new AsyncQueue<never>();
  const broker = await probeStream(() =>
    client.client(GRPCBroker).startStream(outgoing, { timeoutMs: 500 })
  );
  outgoing.end();
  if (broker.present) {
    results.pass("broker-stream", `GRPCBroker.StartStream served (${broker.how})`);
  } else {results.fail(
      "broker-stream",
      "GRPCBroker.StartStream not served",
      "an open stream",
      broker.how,
    );}
}

async function probeStream(
  open: () => AsyncIterable<unknown>,
): Promise<{ present: boolean; how: string }> {
  let messages = 0;
  try {
    for await (const _ of open()) messages++;
    return { present: true, how: `ended after ${messages} messages` };
  } catch (err) {
    const rpc = toRpcError(err);
    if (rpc.code === Status.DEADLINE_EXCEEDED || rpc.code === Status.CANCELLED) {
      return { present: true, how: `open until our 500 ms deadline, ${messages} messages` };
    }
    return { present: false, how: rpc.message };
  }
}

function shutdownPoint(stop: StopReport, connected: boolean, results: Results) {
  const expected = "exit status 0 within 2 s of GRPCController.Shutdown";
  if (!connected) {
    results.skip("shutdown", "no connection to call Shutdown on");
    return;
  }
  if (stop.how === "already-exited") {
    results.fail(
      "shutdown",
      "it exited on its own",
      expected,
      `${exitText(stop.exit)} before Shutdown`,
    );
    return;
  }
  const step = stop.steps[0];
  if (stop.how === "shutdown" && stop.exit.code === 0) {
    results.pass("shutdown", `exit status 0, ${step.ms} ms after Shutdown`);
    return;
  }
  // The reply matters when the plugin stayed up (UNIMPLEMENTED: no controller); once it exits,
  // an OK, CANCELLED or UNAVAILABLE reply is a race with its exit, so it is left out.
  const reply = stop.how !== "shutdown" && step?.rpc && step.rpc !== "OK"
    ? ` (Shutdown replied ${step.rpc.split(":")[0]})`
    : "";
  results.fail(
    "shutdown",
    "not a clean exit on Shutdown",
    expected,
    stop.how === "shutdown"
      ? `${exitText(stop.exit)}${reply}`
      : `still running after 2 s${reply}; ${
        stop.how === "sigterm" ? "SIGTERM" : "SIGKILL"
      } stopped it`,
  );
}

function leftoverPoint(
  launched: Launch,
  info: HandshakeInfo,
  results: Results,
  session = "",
) {
  const left: string[] = [];
  if (info.network === "unix" && pathPresent(info.address)) left.push(`its socket ${info.address}`);
  const files = [
    ...listTree(launched.socketDir).map((f) => `${launched.socketDir}/${f}`),
    ...listTree(launched.tmpDir).map((f) => `${launched.tmpDir}/${f}`),
  ].filter((f) => f !== info.address);
  if (files.length) {
    left.push(
      `files in PLUGIN_UNIX_SOCKET_DIR/TMPDIR: ${files.map((f) => f.split("/").pop()).join(", ")}`,
    );
  }
  const members = processGroupMembers(launched.child.pid);
  if (members === undefined) results.processesChecked = false;
  if (members?.length) left.push(`processes ${members.join(", ")} of its process group`);
  results.leftoversChecked = true;
  if (left.length) results.leftovers.push(session + left.join("; "));
}

async function checkNegotiation(
  settings: HostSettings,
  results: Results,
  start: Start,
  main: { appVersion?: number },
) {
  if (settings.versions.length > 1 && main.appVersion !== undefined) {
    const answers = await Promise.all(settings.versions.map(async (v) => {
      const launched = await start({ env: { PLUGIN_PROTOCOL_VERSIONS: String(v) } });
      const ok = launched.outcome.kind === "line" &&
        launched.outcome.line.split("|")[1] === String(v);
      await launched.dispose();
      return ok;
    }));
    const supported = settings.versions.filter((_, i) => answers[i]);
    const offered = settings.versions.join(",");
    if (!supported.length) {
      results.fail(
        "version-negotiation",
        "no offered version is accepted alone",
        `one of ${offered}`,
        `answered ${main.appVersion} to ${offered}`,
      );
    } else {
      const best = Math.max(...supported);
      if (main.appVersion === best) {
        results.pass(
          "version-negotiation",
          `offered ${offered} → ${best} (supports ${supported.join(",")})`,
        );
      } else {
        results.fail(
          "version-negotiation",
          "not the highest common version",
          String(best),
          `${main.appVersion} (it supports ${supported.join(",")} of ${offered})`,
        );
      }
    }
  }
}

async function checkRefusal(settings: HostSettings, results: Results, start: Start) {
  const unknown = Math.max(...settings.versions) + 100;
  const launched = await start({ env: { PLUGIN_PROTOCOL_VERSIONS: String(unknown) } });
  const { outcome } = launched;
  const expected = `a version a host refuses, or an exit (RPCPlugin) — never ${unknown}`;
  if (outcome.kind === "exit") {
    results.pass("version-refusal", `asked for ${unknown}: exited (${exitText(outcome.status)})`);
  } else if (outcome.kind === "timeout") {
    results.fail(
      "version-refusal",
      "no answer",
      expected,
      `nothing within ${settings.timeoutMs} ms`,
    );
  } else {
    const answered = outcome.line.split("|")[1];
    if (answered === String(unknown)) {
      results.fail(
        "version-refusal",
        "claims a version it cannot serve",
        expected,
        `version ${answered}`,
      );
    } else {
      results.pass(
        "version-refusal",
        `asked for ${unknown}: answered ${answered}, which the host refuses (go-plugin's way)`,
      );
    }
  }
  await launched.dispose();
}

async function checkMtls(settings: HostSettings, results: Results, start: Start) {
  const launched = await start({ clientCert: await newCertificate() });
  let info: HandshakeInfo | undefined;
  if (launched.outcome.kind === "line") {
    try {
      info = readHandshake(launched, settings);
    } catch {
      // Reported by handshake-line already.
    }
  }
  if (!info) {
    for (const id of MTLS_POINTS) {
      results.skip(id, "no handshake with a client certificate");
    }
    await launched.dispose();
    return;
  }
  await mtlsPoints(launched, info, results);
  let client: PluginClient | undefined;
  if (results.verdictOf("mtls-connect") === "PASS") {
    client = await connectTo(launched, info, settings).catch(() => undefined);
  }
  await stopPlugin(launched, client);
  leftoverPoint(launched, info, results, "after the AutoMTLS session: ");
  await launched.dispose();
}

/** The four AutoMTLS points, on a session started with a client certificate. */
async function mtlsPoints(
  launched: Launch,
  info: HandshakeInfo,
  results: Results,
) {
  const rest = MTLS_POINTS.slice(1);
  const certField = (launched.outcome as { line: string }).line.split("|")[5] ?? "";
  if (!info.serverCert) {
    results.fail(
      "mtls-certificate",
      "no certificate in the handshake",
      "field 6: the plugin's certificate (unpadded base64 DER) when PLUGIN_CLIENT_CERT is set",
      "an empty field (go-plugin hosts then fail; python-plugin falls back to plaintext)",
    );
    for (const id of rest) results.skip(id, "the plugin returned no certificate");
    return;
  }
  let summary: string;
  try {
    const cert = describeCertificate(info.serverCert);
    summary = certificateSummary(cert);
    const problems: string[] = [];
    if (!cert.sans.includes("DNS:localhost")) {
      problems.push("no SAN DNS:localhost (go-plugin hosts verify the name localhost)");
    }
    if (certField.endsWith("=")) problems.push("padded base64");
    if (problems.length) {
      results.fail(
        "mtls-certificate",
        "a certificate go-plugin hosts reject",
        "SAN DNS:localhost, unpadded base64",
        `${summary}; ${problems.join("; ")}`,
      );
    } else {
      const profile = cert.curve === "P-521" ? "" : ` (go-plugin's own are P-521)`;
      results.pass("mtls-certificate", summary + profile);
    }
  } catch (err) {
    results.fail(
      "mtls-certificate",
      "an unreadable certificate",
      "an X.509 certificate",
      (err as Error).message,
    );
    for (const id of rest) results.skip(id, "the plugin's certificate cannot be read");
    return;
  }
  const ca = derToPem(info.serverCert);
  const right = await tlsProbe(info, ca, launched.hostCert);
  if (right.accepted) {
    results.pass("mtls-connect", "mutual TLS with the host's certificate: HTTP/2 up");
  } else {
    results.fail("mtls-connect", "the right certificate is refused", "a TLS session", right.detail);
  }
  const none = await tlsProbe(info, ca, undefined);
  if (!none.accepted) {
    results.pass("mtls-client-cert-required", `without a client certificate: ${none.detail}`);
  } else {
    results.fail(
      "mtls-client-cert-required",
      "one-way TLS: any local process may call the plugin",
      "refused without a client certificate",
      none.detail,
    );
  }
  const other = await tlsProbe(info, ca, await newCertificate());
  if (!other.accepted) {
    results.pass("mtls-wrong-cert-refused", `another certificate: ${other.detail}`);
  } else {
    results.fail(
      "mtls-wrong-cert-refused",
      "it accepts a certificate it was not given",
      "refused (it pins PLUGIN_CLIENT_CERT)",
      other.detail,
    );
  }
}

/** HTTP/2's client preface and an empty SETTINGS frame. */
const H2_PREFACE = new Uint8Array([
  ...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  0,
  0,
  0,
  4,
  0,
  0,
  0,
  0,
  0,
]);

/**
 * One TLS connection to the plugin's address with (or without) a client certificate. Accepted
 * means the server answered the HTTP/2 preface after the handshake (a TLS 1.3 server refuses a
 * client certificate only after the client's handshake is done, with an alert).
 */
function tlsProbe(
  info: HandshakeInfo,
  caPem: string,
  cert: Certificate | undefined,
  verifyServer = false,
): Promise<{ accepted: boolean; detail: string }> {
  return new Promise((resolve) => {
    const colon = info.address.lastIndexOf(":");
    const raw = info.network === "unix" ? net.connect({ path: info.address }) : net.connect({
      host: info.address.slice(0, colon).replace(/^\[|\]$/g, ""),
      port: Number(info.address.slice(colon + 1)),
    });
    let done = false;
    const finish = (accepted: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      resolve({ accepted, detail });
    };
    const socket = tls.connect({
      socket: raw,
      ca: caPem,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      servername: "localhost",
      ALPNProtocols: ["h2"],
      // A host pins the plugin's certificate; the probes with the wrong or no client
      // certificate judge only the plugin's policy on ours.
      rejectUnauthorized: verifyServer,
    });
    const timer = setTimeout(() => finish(false, "no answer within 3 s"), 3000);
    socket.once("secureConnect", () => socket.write(H2_PREFACE));
    socket.once("data", () => finish(true, "accepted"));
    socket.once("error", (err) => finish(false, `refused (${err.message})`));
    socket.once("close", () => finish(false, "refused (connection closed)"));
  });
}

/** The text report. */
export function renderCheck(
  results: CheckResult[],
  summary: { passed: number; failed: number; skipped: number },
  io: CliIo,
): string {
  const c = paint(io, "stdout");
  const width = Math.max(...results.map((r) => r.id.length));
  const lines = results.map((r) => {
    const tag = r.verdict === "PASS"
      ? c.green("PASS")
      : r.verdict === "FAIL"
      ? c.red("FAIL")
      : c.yellow("SKIP");
    const text = r.verdict === "FAIL"
      ? `${r.detail}: expected ${r.expected}; got ${r.got}`
      : r.detail;
    return `${tag}  ${r.id.padEnd(width)}  ${text}`;
  });
  const total =
    `check: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`;
  return `${lines.join("\n")}\n${summary.failed ? c.red(total) : c.bold(total)}\n`;
}

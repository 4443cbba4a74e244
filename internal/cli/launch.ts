/**
 * How the `plugwire` command runs a plugin: it starts the process itself (so it sees the raw
 * handshake line, controls every environment variable and owns the exit status), then connects
 * through the host's own reattach path (`startPlugin({ reattach })`), so TLS, the broker and
 * stdio streams and the typed clients are exactly a plugwire host's; and it stops the plugin on
 * go-plugin's ladder (Shutdown, then SIGTERM, then SIGKILL), timing each step.
 *
 * @module
 */

import { GRPCController } from "../../gen/core/plugin/grpc_controller_pb.ts";
import type { PluginClient } from "../client.ts";
import { startPlugin } from "../start.ts";
import { PluginError } from "../errors.ts";
import { toRpcError } from "../grpc.ts";
import { type HandshakeInfo, parseHandshakeLine } from "../handshake.ts";
import type { LogRecord } from "../hclog.ts";
import { readFirstLine, watchStderr } from "../process.ts";
import type { Certificate } from "../mtls.ts";
import { decodeHandshakeCert, derToPem } from "../pem.ts";
import {
  type ChildHandle,
  type ExitStatus,
  getEnvAll,
  makeTempDir,
  removePath,
  resolveExecutable,
  spawnProcess,
} from "../runtime.ts";
import type { TlsConfig } from "../tls.ts";
import type { HostSettings } from "./args.ts";

/** How a launch ended before or at the handshake. */
export type LaunchOutcome =
  | { kind: "line"; line: string }
  | { kind: "exit"; status: ExitStatus }
  | { kind: "timeout" };

/** One plugin process started by the command. */
export interface Launch {
  /** The process. */
  readonly child: ChildHandle;
  /** The environment it was given. */
  readonly env: Record<string, string>;
  /** The directory named in `PLUGIN_UNIX_SOCKET_DIR`. */
  readonly socketDir: string;
  /** The directory named in `TMPDIR` (inside `root`). */
  readonly tmpDir: string;
  /** The host's AutoMTLS certificate, when one was sent. */
  readonly hostCert?: Certificate;
  /** The first stdout line, an exit, or a timeout. */
  readonly outcome: LaunchOutcome;
  /** Milliseconds from spawn to the outcome. */
  readonly startMs: number;
  /** Every stderr line so far, parsed (go-plugin's rules). */
  readonly records: LogRecord[];
  /** Resolves when stderr has ended. */
  readonly stderrDone: Promise<void>;
  /** Kills the process if it still runs and removes its directories. */
  dispose(): Promise<void>;
}

/** What to change in one launch (the checks vary one thing at a time). */
export interface LaunchVariation {
  /** Variables to set (a string) or remove (undefined) after the usual ones. */
  env?: Record<string, string | undefined>;
  /** Send this client certificate (null: none), instead of following `autoMtls`. */
  clientCert?: Certificate | null;
  /** `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`. @default {[10000, 25000]} */
  ports?: [number, number];
}

/** A certificate for AutoMTLS (the ASN.1 code is loaded on first use). */
export async function newCertificate(): Promise<Certificate> {
  const { generateCertificate } = await import("../mtls.ts");
  return await generateCertificate();
}

/**
 * Starts the plugin with go-plugin's host environment and waits for its first stdout line.
 * The process keeps running (unless it exited); call `dispose()` when done.
 */
export async function launch(
  settings: HostSettings,
  variation: LaunchVariation = {},
): Promise<Launch> {
  const hostCert = variation.clientCert !== undefined
    ? variation.clientCert ?? undefined
    : settings.autoMtls
    ? await newCertificate()
    : undefined;
  const root = await makeTempDir("plugwire-cli-");
  const socketDir = `${root}/sockets`;
  const tmpDir = `${root}/tmp`;
  const { mkdir } = await import("node:fs/promises");
  try {
    await mkdir(socketDir, { mode: 0o700 });
    await mkdir(tmpDir, { mode: 0o700 });
  } catch (err) {
    await removePath(root);
    throw err;
  }
  const [minPort, maxPort] = variation.ports ?? [10000, 25000];
  const env: Record<string, string> = {
    ...getEnvAll(),
    TMPDIR: tmpDir,
    ...settings.env,
    [settings.cookie.key]: settings.cookie.value,
    PLUGIN_MIN_PORT: String(minPort),
    PLUGIN_MAX_PORT: String(maxPort),
    PLUGIN_PROTOCOL_VERSIONS: settings.versions.join(","),
    PLUGIN_UNIX_SOCKET_DIR: socketDir,
  };
  delete env.PLUGIN_CLIENT_CERT;
  if (hostCert) env.PLUGIN_CLIENT_CERT = hostCert.certPem;
  for (const [k, v] of Object.entries(variation.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  let child: ChildHandle;
  try {
    child = await spawnProcess(resolveExecutable(settings.cmd[0]), settings.cmd.slice(1), {
      env,
      stdin: "null",
    });
  } catch (cause) {
    await removePath(root);
    const message = (cause as Error).message;
    // Deno without --allow-run (e.g. a file bundled with a plugin's permissions).
    const hint = /Requires run access|NotCapable/.test(message)
      ? "this plugwire may not start processes: run it with deno run -A"
      : "check the path after -- and that the file is executable";
    throw new PluginError(
      "exited-before-connect",
      `cannot start ${JSON.stringify(settings.cmd[0])}: ${message} (${hint})`,
      { cause },
    );
  }
  const started = Date.now();

  // The host's own readers (process.ts): stderr as records, the first stdout line, the rest
  // of stdout read and dropped so the plugin never blocks on a pipe.
  const records: LogRecord[] = [];
  const { done: stderrDone } = watchStderr(child, settings.cmd[0], {
    logger: ({ plugin: _plugin, ...record }) => void records.push(record),
  });
  const firstLine = readFirstLine(child).then(({ line, eof }) => eof && !line ? undefined : line);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome: LaunchOutcome = await Promise.race([
    firstLine.then(async (line): Promise<LaunchOutcome> =>
      line === undefined ? { kind: "exit", status: await child.exited } : { kind: "line", line }
    ),
    child.exited.then(async (status): Promise<LaunchOutcome> => {
      // A line printed just before exiting still counts.
      const line = await Promise.race([
        firstLine,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
      ]);
      return line === undefined ? { kind: "exit", status } : { kind: "line", line };
    }),
    new Promise<LaunchOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "timeout" }), settings.timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const startMs = Date.now() - started;
  if (outcome.kind === "exit") {
    await Promise.race([stderrDone, new Promise((r) => setTimeout(r, 300))]);
  }

  let disposed: Promise<void> | undefined;
  return {
    child,
    env,
    socketDir,
    tmpDir,
    hostCert,
    outcome,
    startMs,
    records,
    stderrDone,
    dispose() {
      disposed ??= (async () => {
        if (child.kill("SIGKILL")) await child.exited;
        child.killStragglers();
        await removePath(root);
      })();
      return disposed;
    },
  };
}

/** Parses a launch's handshake line as a plugwire host does (a PluginError on failure). */
export function readHandshake(launched: Launch, settings: HostSettings): HandshakeInfo {
  if (launched.outcome.kind !== "line") throw new Error("no handshake line");
  return parseHandshakeLine(launched.outcome.line, {
    hostVersions: settings.versions,
    decodeCert: decodeHandshakeCert,
  });
}

/** The TLS settings of a session with the plugin, or undefined for plaintext. */
export function tlsFor(launched: Launch, info: HandshakeInfo): TlsConfig | undefined {
  if (!launched.hostCert || !info.serverCert) return undefined;
  return {
    cert: launched.hostCert.certPem,
    key: launched.hostCert.keyPem,
    ca: derToPem(info.serverCert),
  };
}

/**
 * Connects to a launched plugin through the host's reattach path. The returned client is
 * closed (not killed) by the caller; {@link stopPlugin} stops the process.
 */
export async function connectTo(
  launched: Launch,
  info: HandshakeInfo,
  settings: HostSettings,
  tls: TlsConfig | undefined = tlsFor(launched, info),
): Promise<PluginClient> {
  try {
    return await startPlugin({
      reattach: {
        protocol: "grpc",
        protocolVersion: info.appVersion,
        network: info.network,
        address: info.address,
        pid: launched.child.pid,
        tls,
      },
      handshake: {
        protocolVersion: info.appVersion,
        magicCookieKey: settings.cookie.key,
        magicCookieValue: settings.cookie.value,
      },
      plugins: {},
      startTimeoutMs: settings.timeoutMs,
      logger: () => {},
    });
  } catch (err) {
    // The reattach path words every failure as "process not found"; the cause says more.
    const cause = (err as Error).cause;
    if (err instanceof PluginError && cause instanceof PluginError) throw cause;
    throw err;
  }
}

/** One step of a stop, timed. */
export interface StopStep {
  step: "shutdown" | "sigterm" | "sigkill";
  /** Milliseconds from the step's start to the exit, or to giving up on it. */
  ms: number;
  /** Whether the plugin exited during this step. */
  exited: boolean;
  /** With `shutdown`: how the RPC ended (`OK` or a status), when it did. */
  rpc?: string;
}

/** How a plugin was stopped. */
export interface StopReport {
  /** The step that made it exit. */
  how: "shutdown" | "sigterm" | "sigkill" | "already-exited";
  steps: StopStep[];
  exit: ExitStatus;
}

function waitExit(child: ChildHandle, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    child.exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

/**
 * go-plugin's Kill, with SIGTERM between its two steps as plugwire's host does: Shutdown over
 * gRPC and `graceMs` for the exit, then SIGTERM and `graceMs`, then SIGKILL. Closes `client`.
 */
export async function stopPlugin(
  launched: Launch,
  client: PluginClient | undefined,
  graceMs = 2000,
): Promise<StopReport> {
  const { child } = launched;
  const steps: StopStep[] = [];
  let exited = await Promise.race([
    child.exited.then(() => true),
    Promise.resolve(false),
  ]);
  if (exited) {
    await client?.close();
    return { how: "already-exited", steps, exit: await child.exited };
  }
  let how: StopReport["how"] = "sigkill";
  if (client) {
    const t0 = Date.now();
    let rpc = "OK";
    const call = client.client(GRPCController).shutdown({}, { timeoutMs: graceMs }).catch(
      (err) => {
        rpc = toRpcError(err).message;
      },
    );
    exited = await waitExit(child, graceMs);
    await Promise.race([call, new Promise((r) => setTimeout(r, 50))]);
    steps.push({ step: "shutdown", ms: Date.now() - t0, exited, rpc });
    if (exited) how = "shutdown";
  }
  if (!exited) {
    const t0 = Date.now();
    child.kill("SIGTERM");
    exited = await waitExit(child, graceMs);
    steps.push({ step: "sigterm", ms: Date.now() - t0, exited });
    if (exited) how = "sigterm";
  }
  if (!exited) {
    const t0 = Date.now();
    child.kill("SIGKILL");
    await child.exited;
    steps.push({ step: "sigkill", ms: Date.now() - t0, exited: true });
  }
  await client?.close();
  return { how, steps, exit: await child.exited };
}

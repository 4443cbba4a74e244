/**
 * Starts a Hipcheck plugin the way Hipcheck core 3.15 does (`plugin/manager.rs`, hipcheck.md
 * §1.1): pick a loopback port by binding port 0 and closing it, spawn
 * `<cmd…> --port P --log-level L`, and count the plugin as ready once a gRPC connection to
 * `127.0.0.1:P` succeeds, retrying with core's linear backoff; when every attempt fails the
 * process is killed and respawned on a new port. There is no handshake line, cookie or TLS.
 *
 * The plugin's stderr is read as core reads it (one JSON object per line,
 * `{"level":"ERROR","fields":{"message":"…"},"target":"…"}`) and turned into the same
 * {@link LogRecord}s go-plugin plugins produce, so one {@link LogSink} serves both kinds.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { clientSockets, hangUp, type Sockets } from "../hangup.ts";
import * as net from "node:net";
import { PluginService } from "../../gen/hipcheck/v1/hipcheck_pb.ts";
import { PluginError } from "../errors.ts";
import type { ServiceClient } from "../grpc.ts";
import { createServiceClient } from "../grpc_client.ts";
import { type LogLevel, type LogRecord, StderrLineParser } from "../hclog.ts";
import type { LogSink } from "../logger.ts";
import type { HipcheckLogLevel } from "./log.ts";
import { type PluginProcess, type SpawnedProcess, spawnPlugin, watchStderr } from "../process.ts";
import { type ExitStatus, getEnvAll, probeAddress, resolveExecutable } from "../runtime.ts";
import { hipcheckFlavour } from "./flavour.ts";

/**
 * How hard the core tries to reach a starting plugin. The defaults are core's `Exec.kdl`
 * defaults (about 1 s per spawn, 3 spawns); a Python plugin on a loaded machine needs more.
 *
 * @example Room for a slow interpreter, as an Exec.kdl would give it
 * ```ts
 * import type { HipcheckConnectPolicy } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const patient: HipcheckConnectPolicy = { backoffMs: 500, maxConnectAttempts: 20 };
 * // Attempt n sleeps backoffMs × n first: the budget of one spawn.
 * const budgetMs = Array.from({ length: 20 }, (_, n) => 500 * n).reduce((a, b) => a + b);
 * assert.equal(budgetMs, 95_000);
 * assert.equal(patient.maxSpawnAttempts, undefined); // core's 3
 * ```
 */
export interface HipcheckConnectPolicy {
  /** Attempt n (from 0) first sleeps `backoffMs × n × (1 ± jitter)`. @default {100} */
  backoffMs?: number;
  /** Connection attempts per spawn. @default {5} */
  maxConnectAttempts?: number;
  /** Jitter, in percent of each sleep. @default {10} */
  jitterPercent?: number;
  /** Spawns (each on a new port) before giving up. @default {3} */
  maxSpawnAttempts?: number;
}

/** What {@link launchHipcheckPlugin} needs. */
export interface LaunchOptions {
  /** The entrypoint: executable and arguments (`--port`/`--log-level` are appended). */
  cmd: readonly string[];
  /** The name records and errors carry, e.g. `mitre/example`. */
  name: string;
  /** Passed as `--log-level`. */
  logLevel: HipcheckLogLevel;
  /** Extra environment (on top of this process's, as core does). */
  env?: Record<string, string>;
  /** Working directory (core leaves its own). */
  cwd?: string;
  /** Receives the plugin's log records. */
  logger: LogSink;
  /** Connection retries. */
  connect?: HipcheckConnectPolicy;
  /** Aborts the start: the process is killed and the launch rejects. */
  signal?: AbortSignal;
}

/** A started, reachable Hipcheck plugin process. */
export interface LaunchedPlugin {
  /** The process id. */
  readonly pid: number;
  /** The loopback port it serves on. */
  readonly port: number;
  /** How many processes were spawned before this one was reached (1 when the first was). */
  readonly spawns: number;
  /** A typed client of `hipcheck.v1.PluginService`. */
  readonly client: ServiceClient<typeof PluginService>;
  /** Settles when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** The last stderr lines, oldest first, for error messages. */
  readonly stderrTail: readonly string[];
  /**
   * Stops the plugin: waits up to `graceMs` for it to exit by itself (it should once its query
   * stream is closed), then SIGTERM, then SIGKILL; closes the channel. Idempotent.
   */
  kill(graceMs?: number): Promise<void>;
}

const HC_LEVELS: Readonly<Record<string, LogLevel>> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
  // Python's logging names: core cannot parse them and drops the line (hipcheck.md §1.6); we
  // keep them, as the level they mean.
  WARNING: "warn",
  CRITICAL: "error",
};

/**
 * The record for one line a Hipcheck plugin wrote to stderr, or undefined when it is not in
 * core's format. Besides real JSON, the Python SDK's hand-concatenated lines are recovered when
 * their message holds a `"` or a newline's first line (which make them invalid JSON, so core
 * drops them).
 */
export function parseHipcheckLogLine(raw: string): LogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return parsePythonSdkLine(raw);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const { level, fields, target, ...rest } = parsed as Record<string, unknown>;
  const mapped = typeof level === "string" ? HC_LEVELS[level.toUpperCase()] : undefined;
  if (!mapped) return undefined;
  const { message, ...fieldRest } = typeof fields === "object" && fields !== null &&
      !Array.isArray(fields)
    ? fields as Record<string, unknown>
    : {} as Record<string, unknown>;
  const record: LogRecord = {
    level: mapped,
    message: typeof message === "string" ? message : message === undefined ? "" : String(message),
    fields: { ...rest, ...fieldRest },
    raw,
  };
  if (typeof target === "string" && target) record.module = target;
  return record;
}

// `{"target": "<name>", "level": "%(levelname)s", "fields": { "message": "%(message)s" } }`
const PYTHON_SDK_LINE =
  /^\{"target": "(.*?)", "level": "([A-Z]+)", "fields": \{ "message": "(.*)" \} \}$/s;

function parsePythonSdkLine(raw: string): LogRecord | undefined {
  const m = PYTHON_SDK_LINE.exec(raw);
  const level = m && HC_LEVELS[m[2]];
  if (!m || !level) return undefined;
  const record: LogRecord = { level, message: m[3], fields: {}, raw };
  if (m[1]) record.module = m[1];
  return record;
}

/** A free loopback port, chosen as core chooses it: bind port 0, read it, close (racy). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** Hipcheck's stderr lines as core reads them, others by go-plugin's rules (plain text at debug). */
function hipcheckLineParser(): (line: string) => LogRecord | undefined {
  const fallback = new StderrLineParser();
  return (line) => {
    const raw = line.replace(/\r?\n?$/, "");
    if (!raw) return undefined;
    return parseHipcheckLogLine(raw) ?? fallback.parse(raw);
  };
}

async function killChild(child: PluginProcess, graceMs: number, hasExited: () => boolean) {
  const waitExit = (ms: number) =>
    Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
  if (!hasExited() && !(await waitExit(graceMs))) {
    child.signal("SIGTERM");
    if (!(await waitExit(graceMs))) {
      child.signal("SIGKILL");
      await child.exited;
    }
  }
  // A plugin started through a shell leaves the real plugin in its process group.
  child.killStragglers();
}

/**
 * Spawns a Hipcheck plugin and connects to it, respawning on a new port when it cannot be
 * reached, as core does. Rejects with a {@link PluginError} (`exited-before-connect`,
 * `connection-failed` or `closed` on abort), carrying the plugin's last stderr lines, and
 * leaves no process behind.
 */
export async function launchHipcheckPlugin(options: LaunchOptions): Promise<LaunchedPlugin> {
  const [file, ...args] = options.cmd;
  if (!file) throw new PluginError("misconfigured", `${options.name}: the command is empty`);
  const path = resolveExecutable(file);
  const backoffMs = options.connect?.backoffMs ?? 100;
  const attempts = Math.max(1, options.connect?.maxConnectAttempts ?? 5);
  const jitter = (options.connect?.jitterPercent ?? 10) / 100;
  const spawns = Math.max(1, options.connect?.maxSpawnAttempts ?? 3);
  const env = { ...getEnvAll(), ...options.env };
  let lastError: PluginError | undefined;

  for (let spawn = 1; spawn <= spawns; spawn++) {
    if (options.signal?.aborted) break;
    const port = await freeLoopbackPort();
    let child: SpawnedProcess;
    try {
      // The shared process seam: its own process group, killed if this process ends first
      // (as core's kill_on_drop does).
      child = await spawnPlugin(
        path,
        [...args, ...hipcheckFlavour.launchArgs({ port, logLevel: options.logLevel })],
        { env, cwd: options.cwd, stdin: "null" },
      );
    } catch (cause) {
      throw new PluginError(
        "exited-before-connect",
        `Cannot start Hipcheck plugin ${options.name}: ${(cause as Error).message}`,
        { cause, path },
      );
    }
    let hasExited = false;
    const exited = child.exited.then((status) => {
      hasExited = true;
      child.release();
      return status;
    });
    const { tail } = watchStderr(child.child, options.name, {
      logger: options.logger,
      parse: hipcheckLineParser(),
    });
    // core's stdout is inherited; ours is drained so the plugin never blocks on a full pipe.
    child.child.stdout.onData(() => {});

    const address = `127.0.0.1:${port}`;
    let reached = false;
    for (let n = 0; n < attempts && !reached && !hasExited && !options.signal?.aborted; n++) {
      const pause = backoffMs * n * (1 + (Math.random() * 2 - 1) * jitter);
      if (pause > 0) await sleep(pause, options.signal);
      if (hasExited || options.signal?.aborted) break;
      reached = await probeAddress("tcp", address, Math.max(200, backoffMs));
    }
    let client: grpc.Client | undefined;
    let sockets: Sockets = new Set();
    if (reached && !hasExited && !options.signal?.aborted) {
      // The port accepts: now the HTTP/2 preface and SETTINGS, which is what tonic's connect
      // waits for.
      const credentials = grpc.credentials.createInsecure();
      // The connection's sockets, to end it without a GOAWAY (see ../hangup.ts).
      sockets = clientSockets(credentials);
      client = new grpc.Client(address, credentials, {
        // Chunked messages are 4 MiB − 1 KiB of payload plus the message's other fields; the
        // Python SDK's chunker can exceed that (hipcheck.md §1.5 G), so accept what comes.
        "grpc.max_receive_message_length": -1,
      });
      try {
        await new Promise<void>((resolve, reject) =>
          client!.waitForReady(
            Date.now() + Math.max(2000, backoffMs * attempts),
            (err) => err ? reject(err) : resolve(),
          )
        );
      } catch {
        hangUp(sockets);
        client.close();
        client = undefined;
      }
    }
    if (client) {
      const ready = client;
      let killing: Promise<void> | undefined;
      return {
        pid: child.pid,
        port,
        spawns: spawn,
        client: createServiceClient(PluginService, ready),
        exited,
        stderrTail: tail,
        kill(graceMs = 1000) {
          killing ??= (async () => {
            // Hung up rather than closed with a GOAWAY: Deno 2.9.6 can abort a process that
            // receives one (../hangup.ts), and this plugin may be plugwire's own.
            hangUp(sockets);
            ready.close();
            await killChild(child, graceMs, () => hasExited);
          })();
          return killing;
        },
      };
    }
    const exitedByItself = hasExited;
    await killChild(child, 0, () => hasExited);
    const status = await exited;
    if (options.signal?.aborted) break;
    const how = status.signal ? `signal ${status.signal}` : `status ${status.code}`;
    lastError = new PluginError(
      exitedByItself ? "exited-before-connect" : "connection-failed",
      (exitedByItself
        ? `Hipcheck plugin ${options.name} exited with ${how} before it could be reached`
        : `Hipcheck plugin ${options.name} could not be reached on ${address} after ` +
          `${attempts} connection attempts`) +
        ` (spawn ${spawn} of ${spawns})` +
        (tail.length ? `; its last stderr lines:\n  ${tail.join("\n  ")}` : ""),
      { path, stderrTail: [...tail] },
    );
    options.logger({
      plugin: options.name,
      level: "warn",
      message: lastError.message,
      fields: { spawn, port },
      raw: "",
    });
  }
  if (options.signal?.aborted) {
    throw new PluginError("closed", `Starting Hipcheck plugin ${options.name} was aborted`, {
      cause: options.signal.reason,
      path,
    });
  }
  throw lastError!;
}

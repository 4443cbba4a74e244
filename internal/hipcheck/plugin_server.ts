/**
 * The gRPC server of a Hipcheck plugin, as Hipcheck core starts it: `--port P --log-level L`
 * (unknown arguments tolerated), plain h2c on 127.0.0.1:P, the four setup RPCs, and the query
 * stream, whose response headers go out the moment it opens (core waits for them before it
 * sends anything). The process ends when core closes the stream, or on SIGTERM/SIGINT.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { LineSplitter } from "../lines.ts";
import { parseArgs } from "node:util";
import {
  ConfigurationStatus,
  type InitiateQueryProtocolRequest,
  PluginService,
  type Query,
} from "../../gen/hipcheck/v1/hipcheck_pb.ts";
import { messagesOf, serviceDefinition, type ServiceImpl } from "../grpc.ts";
import { serviceHandlers } from "../grpc_server.ts";
import { RpcError, Status } from "../errors.ts";
import { captureOutput, exitProcess, onSignal, programArgs } from "../runtime.ts";
import { ConfigError, HipcheckError } from "./errors.ts";
import {
  type HipcheckLogger,
  hipcheckLogger,
  type HipcheckLogLevel,
  parseLogLevel,
} from "./log.ts";
import { compiledPlugin, type HipcheckPlugin, type PluginSetup, setUpPlugin } from "./plugin.ts";
import { MAX_CHUNK_BYTES, routeFromCore } from "./query_state_machine.ts";
import { PluginSession } from "./session.ts";

/**
 * Options of `servePlugin`; by default everything comes from the command line core runs.
 *
 * @example Serving on a port of one's choice, in-process, without exiting
 * ```ts
 * import { definePlugin, query, servePlugin } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "echo",
 *   queries: { echo: query({ key: z.string(), output: z.string(), default: true }, (_e, k) => k) },
 * });
 * const server = await servePlugin(plugin, { args: ["--port", "0"], exit: false });
 * assert.ok(server.port > 0);
 * await server.close();
 * ```
 */
export interface ServePluginOptions {
  /** The command line (default: the process's arguments). `--port` is required. */
  args?: string[];
  /** Ends the process when core closes the stream or on SIGTERM/SIGINT (default true). */
  exit?: boolean;
  /** Where log lines go (default: stderr). */
  writeLog?: (line: string) => void;
  /** The chunk budget in bytes (default 4 MiB − 1 KiB, as Hipcheck; tests use small ones). */
  maxChunkBytes?: number;
  /**
   * Turns what the plugin writes to stdout and stderr (`console.log`, `console.error`…) into
   * log records, INFO and ERROR (default: when `exit` is on, i.e. serving as the process).
   * Hipcheck core passes a plugin's stdout straight to its own, into its report, and drops
   * stderr lines that are not log records.
   */
  captureOutput?: boolean;
}

/**
 * A running plugin server.
 *
 * @example
 * ```ts
 * import type { PluginServer } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * function address(server: PluginServer): string {
 *   return `127.0.0.1:${server.port}`;
 * }
 * assert.equal(address({ port: 4000, closed: Promise.resolve(), close: async () => {} }), "127.0.0.1:4000");
 * ```
 */
export interface PluginServer {
  /** The port it listens on. */
  readonly port: number;
  /** Settles when the server has stopped (stream closed, signal, or {@link close}). */
  readonly closed: Promise<void>;
  /** Stops the server: open streams end, pending sub-queries fail. */
  close(): Promise<void>;
}

/** The command line core passes: `--port P --log-level L`; anything else is ignored. */
export function parsePluginArgs(args: string[]): { port: number; logLevel: HipcheckLogLevel } {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string", short: "p" },
      "log-level": { type: "string", short: "l" },
    },
    strict: false,
    allowPositionals: true,
  });
  const portText = typeof values.port === "string" ? values.port : undefined;
  const port = Number(portText);
  if (portText === undefined || !/^\d+$/.test(portText) || port > 65535) {
    throw new HipcheckError(
      "invalid-arguments",
      portText === undefined
        ? "missing --port: Hipcheck core starts plugins with --port <port> --log-level <level>"
        : `--port ${portText}: not a port number`,
    );
  }
  const levelText = values["log-level"];
  const logLevel = parseLogLevel(typeof levelText === "string" ? levelText : undefined) ?? "error";
  return { port, logLevel };
}

/**
 * Serves `plugin` as Hipcheck core expects: reads `--port` and `--log-level` from the command
 * line (ignoring other arguments), listens on 127.0.0.1, answers the setup RPCs and queries, and
 * ends the process when core closes the query stream or on SIGTERM. See
 * {@link ServePluginOptions}.
 *
 * @param plugin The plugin, from `definePlugin`.
 * @param options Where the command line and logs come from; whether to exit.
 * @returns The running server.
 *
 * @example The main module of a plugin, and what core's first RPC gets
 * ```ts
 * import { definePlugin, query, servePlugin } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const plugin = definePlugin({
 *   publisher: "demo",
 *   name: "double",
 *   queries: { double: query({ key: z.number(), output: z.number(), default: true }, (_e, n) => 2 * n) },
 * });
 * if (import.meta.main) await servePlugin(plugin); // core runs: <entrypoint> --port P --log-level L
 *
 * const lines: string[] = [];
 * const server = await servePlugin(plugin, {
 *   args: ["--port", "0", "--log-level", "info", "--unknown-flag"],
 *   exit: false,
 *   writeLog: (line) => lines.push(line),
 * });
 * const { level, fields, target } = JSON.parse(lines[0]);
 * assert.deepEqual([level, fields.message, target], [
 *   "INFO",
 *   `listening on 127.0.0.1:${server.port}`,
 *   "double",
 * ]);
 * await server.close();
 * ```
 */
export async function servePlugin(
  plugin: HipcheckPlugin,
  options: ServePluginOptions = {},
): Promise<PluginServer> {
  compiledPlugin(plugin); // a plugin made by definePlugin, or a clear error now
  const entered = performance.now();
  const { port, logLevel } = parsePluginArgs(options.args ?? programArgs());
  const log = hipcheckLogger(plugin.name, logLevel, options.writeLog);
  const maxBytes = options.maxChunkBytes ?? MAX_CHUNK_BYTES;
  const exit = options.exit ?? true;
  if (options.captureOutput ?? exit) captureAsLog(log);

  let setup: PluginSetup | undefined;
  const ensureSetup = async (): Promise<PluginSetup | undefined> => {
    // Core always configures first; a caller that did not gets the defaults of `{}`.
    if (setup === undefined) setup = await setUpPlugin(plugin, "{}").catch(() => undefined);
    return setup;
  };

  const server = new grpc.Server({
    // Chunks are under 4 MiB; the Python SDK's chunker can emit up to three times that.
    "grpc.max_receive_message_length": 64 << 20,
  });
  const streams = new Set<() => void>();
  let everOpened = false;
  let stopping: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  const impl: ServiceImpl<typeof PluginService> = {
    async *getQuerySchemas() {
      for (const entry of querySchemaEntries(plugin, maxBytes)) yield entry;
    },
    async setConfiguration({ configuration }) {
      try {
        setup = await setUpPlugin(plugin, configuration);
        log.debug("configured", { configuration });
        return { status: ConfigurationStatus.NONE, message: "" };
      } catch (err) {
        const error = err instanceof ConfigError ? err : ConfigError.internal(String(err));
        log.error(`configuration rejected: ${error.message}`, { kind: error.kind });
        return { status: error.status, message: error.message };
      }
    },
    async getDefaultPolicyExpression() {
      return { policyExpression: (await ensureSetup())?.defaultPolicy ?? "" };
    },
    async explainDefaultQuery() {
      return { explanation: (await ensureSetup())?.explanation ?? "" };
    },
    // Served by the grpc-js handler below instead: the project's generic bidi handler sends
    // headers with the first message, and core waits for the headers before its first query.
    initiateQueryProtocol() {
      throw new RpcError(Status.UNIMPLEMENTED, "served by the query-stream handler");
    },
  };
  const handlers = serviceHandlers(PluginService, impl as Record<string, unknown>, undefined);
  handlers.initiateQueryProtocol = (
    call: grpc.ServerDuplexStream<InitiateQueryProtocolRequest, unknown>,
  ) => {
    // Hipcheck core awaits the response headers before it sends anything (without them it
    // hangs, verified with hc 3.15): send them the moment the stream opens.
    call.sendMetadata(new grpc.Metadata());
    everOpened = true;
    void runQueryStream(call);
  };
  server.addService(serviceDefinition(PluginService), handlers);

  async function runQueryStream(
    call: grpc.ServerDuplexStream<InitiateQueryProtocolRequest, unknown>,
  ): Promise<void> {
    const sessions = new Map<number, PluginSession>();
    let open = true;
    const end = () => {
      if (!open) return;
      open = false;
      for (const session of sessions.values()) session.close();
      sessions.clear();
      call.end();
    };
    streams.add(end);
    log.debug("query stream opened");
    const config = () => setup?.config;
    try {
      for await (const request of messagesOf(call) as AsyncIterable<InitiateQueryProtocolRequest>) {
        const chunk = request.query;
        if (chunk === undefined) {
          log.warn("a query-stream message without a query; ignored");
          continue;
        }
        const routing = routeFromCore(chunk, sessions);
        if (routing.action === "ignore") {
          log.warn(routing.reason, { id: chunk.id });
          continue;
        }
        let session = sessions.get(chunk.id);
        if (routing.action === "new" || session === undefined) {
          await ensureSetup();
          session = new PluginSession(chunk.id, {
            plugin,
            get config() {
              return config();
            },
            log,
            maxBytes,
            send: (chunks: Query[]) => {
              if (!open) return;
              for (const query of chunks) call.write({ query });
            },
            done: (id) => sessions.delete(id),
          });
          sessions.set(chunk.id, session);
        }
        session.receive(chunk);
      }
      log.debug("query stream closed by core");
    } catch (err) {
      log.debug(`query stream broke: ${(err as Error).message}`);
    } finally {
      end();
      streams.delete(end);
      if (streams.size === 0 && everOpened) void stop();
    }
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      for (const end of [...streams]) end();
      await new Promise<void>((resolve) => {
        // Let the last replies leave, then close what is left.
        const timer = setTimeout(() => server.forceShutdown(), 500);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      resolveClosed();
      if (exit) exitProcess(0);
    })();
    return stopping;
  }

  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `127.0.0.1:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (err, bound) => err ? reject(err) : resolve(bound),
    );
  });
  if (exit) {
    onSignal("SIGTERM", () => void stop());
    onSignal("SIGINT", () => void stop());
  }
  // How long the process took to get here (loading and defining) and how long serving took:
  // Hipcheck core gives a plugin about 1 s to listen.
  log.info(`listening on 127.0.0.1:${boundPort}`, {
    loaded_ms: Math.round(entered),
    listened_ms: Math.round(performance.now() - entered),
  });
  return { port: boundPort, closed, close: stop };
}

/** Output written through the runtime becomes log records, one per line. */
function captureAsLog(log: HipcheckLogger): void {
  // The project's one line reader; a line without its newline yet waits for the next write.
  const lines = {
    stdout: new LineSplitter((line) => log.info(line.replace(/\n$/, ""), { stream: "stdout" })),
    stderr: new LineSplitter((line) => log.error(line.replace(/\n$/, ""), { stream: "stderr" })),
  };
  captureOutput((channel, bytes) => lines[channel].push(bytes));
}

/**
 * `GetQuerySchemas` entries: the default endpoint as `""`, then every endpoint by name. A
 * schema text over the chunk budget is spread over several entries of the same name, which
 * core concatenates.
 */
export function querySchemaEntries(
  plugin: HipcheckPlugin,
  maxBytes = MAX_CHUNK_BYTES,
): { queryName: string; keySchema: string; outputSchema: string }[] {
  const { endpoints } = compiledPlugin(plugin);
  const names = plugin.defaultQuery === undefined
    ? [...endpoints.keys()]
    : ["", ...endpoints.keys()];
  const entries = [];
  for (const name of names) {
    const endpoint = endpoints.get(name === "" ? plugin.defaultQuery! : name)!;
    const keyPieces = pieces(JSON.stringify(endpoint.key.jsonSchema), maxBytes);
    const outputPieces = pieces(JSON.stringify(endpoint.output.jsonSchema), maxBytes);
    for (let i = 0; i < Math.max(keyPieces.length, outputPieces.length); i++) {
      entries.push({
        queryName: name,
        keySchema: keyPieces[i] ?? "",
        outputSchema: outputPieces[i] ?? "",
      });
    }
  }
  return entries;
}

/** Cuts a text into pieces of at most half the budget each (key and output share a message). */
function pieces(text: string, maxBytes: number): string[] {
  const budget = Math.max(1, Math.floor(maxBytes / 2));
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= budget) return [text];
  const out: string[] = [];
  const decoder = new TextDecoder();
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(bytes.length, start + budget);
    while (end < bytes.length && end > start && (bytes[end] & 0xc0) === 0x80) end--;
    out.push(decoder.decode(bytes.subarray(start, end)));
    start = end;
  }
  return out;
}

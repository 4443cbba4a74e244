/**
 * A running gateway: the core (plugins, routes) on a socket, with reload and graceful stop
 * wired to the control routes, SIGHUP, SIGTERM/SIGINT and (optionally) the config file.
 *
 * @module
 */

import { watch } from "node:fs";
import process from "node:process";
import { writeFile } from "node:fs/promises";
import { onSignal, ownPid, removePath } from "../runtime.ts";
import { type GatewayConfig, GatewayConfigError } from "./config.ts";
import { loadGatewayConfig } from "./load.ts";
import { listen, type Listener } from "./listen.ts";
import { GatewayCore } from "./server.ts";
import { messageOf, type SlotStatus } from "./slot.ts";

/**
 * Options of {@link startGateway}.
 *
 * @example The config's port overridden with a free one, no signal handlers, quiet
 * ```ts
 * import { type GatewayOptions, parseGatewayConfig, startGateway } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const options: GatewayOptions = {
 *   config: parseGatewayConfig(`listen = "127.0.0.1:8080"`),
 *   port: 0,
 *   handleSignals: false,
 *   log: () => {},
 * };
 * const gateway = await startGateway(options);
 * assert.notEqual(new URL(gateway.url).port, "8080");
 * await gateway.stop();
 * ```
 */
export interface GatewayOptions {
  /** A configuration file to read, or a parsed configuration. */
  config: string | GatewayConfig;
  /** Overrides the configuration's port (0 picks a free one). */
  port?: number;
  /**
   * Handle SIGTERM/SIGINT (drain, stop every plugin, resolve {@link Gateway.closed}) and
   * SIGHUP (reload). @default {true}
   */
  handleSignals?: boolean;
  /** Receives the gateway's log lines (never a secret). @default {stderr} */
  log?: (line: string) => void;
  /** Extra environment for every subprocess plugin. */
  pluginEnv?: Record<string, string>;
  /** What `${NAME}` in the config file reads, now and on reload. @default {the process's} */
  env?: Record<string, string | undefined>;
  /** First restart delay after a plugin crash, in ms; doubled per crash in a row. @default {250} */
  restartBackoffMs?: number;
}

/**
 * A running gateway. Stop it with {@link Gateway.stop} (or `await using`).
 *
 * @example Serving an in-process plugin and calling it
 * ```ts
 * import { parseGatewayConfig, startGateway } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/echo.ts`,
 *   `export default { handle: (req, ctx) => ({ path: req.path, greeting: ctx.params.greeting }) };`,
 * );
 * const config = parseGatewayConfig(
 *   `listen = "127.0.0.1:0"\n[plugins.echo]\nmodule = "echo.ts"\npublic = true\n` +
 *     `params = { greeting = "hi" }\n`,
 *   { file: `${dir}/plugwire.toml` },
 * );
 * await using gateway = await startGateway({ config, handleSignals: false, log: () => {} });
 * const response = await fetch(`${gateway.url}/echo/a/b`);
 * assert.equal(response.status, 200);
 * assert.deepEqual(await response.json(), { path: "/a/b", greeting: "hi" });
 * assert.equal(gateway.status()[0].calls, 1);
 * await gateway.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Gateway {
  /** The base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Settles once the gateway has stopped (after {@link Gateway.stop} or a signal). */
  readonly closed: Promise<void>;

  readonly #core: GatewayCore;
  readonly #listener: Listener;
  readonly #log: (line: string) => void;
  readonly #cleanups: (() => void)[] = [];
  #stopping: Promise<void> | undefined;
  #resolveClosed!: () => void;

  /** @internal Use {@link startGateway}. */
  constructor(core: GatewayCore, listener: Listener, log: (line: string) => void) {
    this.#core = core;
    this.#listener = listener;
    this.#log = log;
    this.url = listener.url;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  /** The configuration in force. */
  get config(): GatewayConfig {
    return this.#core.config;
  }

  /** Every plugin's state and numbers, as `GET /-/plugins` shows them. */
  status(): SlotStatus[] {
    return this.#core.status();
  }

  /** Answers one request without the socket (for tests and other servers). */
  fetch(request: Request): Promise<Response> {
    return this.#core.fetch(request, { remoteAddr: "127.0.0.1" });
  }

  /**
   * Reloads one plugin: a new instance beside the old, traffic switched when it is ready, the
   * old one drained and stopped. Rejects (the old one serving on) when the new one fails.
   */
  reloadPlugin(id: string): Promise<void> {
    return this.#core.reloadPlugin(id);
  }

  /**
   * Reads the configuration file again and applies it (plugins added, removed, reloaded).
   * An invalid file changes nothing and rejects with its {@link GatewayConfigError}.
   */
  reload(): Promise<{ failed: Record<string, string> }> {
    return this.#core.reloadAll();
  }

  /**
   * Stops accepting requests, lets in-flight ones finish within `[limits] drain_ms`, then
   * stops every plugin concurrently (Shutdown, SIGTERM, SIGKILL for subprocesses; `terminate`
   * for in-process plugins). Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const cleanup of this.#cleanups) cleanup();
      this.#core.drain();
      await this.#listener.shutdown(this.#core.config.limits.drainMs);
      await this.#core.stop();
      const pidfile = this.#core.config.pidfile;
      if (pidfile) await removePath(pidfile);
      this.#log("stopped");
      this.#resolveClosed();
    })();
    return this.#stopping;
  }

  /** Stops the gateway (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @internal */
  _installHandlers(handleSignals: boolean): void {
    if (handleSignals) {
      const stop = (signal: string) => () => {
        this.#log(`${signal}: draining and stopping`);
        void this.stop();
      };
      this.#cleanups.push(onSignal("SIGTERM", stop("SIGTERM")), onSignal("SIGINT", stop("SIGINT")));
      const hup = () => {
        this.#log("SIGHUP: reloading");
        void this.#reloadLogged();
      };
      process.on("SIGHUP", hup);
      this.#cleanups.push(() => process.off("SIGHUP", hup));
    }
    const file = this.#core.config.file;
    if (this.#core.config.watch && file) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const watcher = watch(file, () => {
        if (!this.#core.config.watch) return; // turned off by a later version of the file
        clearTimeout(timer);
        timer = setTimeout(() => {
          this.#log(`${file} changed: reloading`);
          void this.#reloadLogged();
        }, 200);
      });
      this.#cleanups.push(() => {
        clearTimeout(timer);
        watcher.close();
      });
    }
  }

  async #reloadLogged(): Promise<void> {
    try {
      const { failed } = await this.reload();
      for (const [id, why] of Object.entries(failed)) this.#log(`reload of ${id} failed: ${why}`);
    } catch (err) {
      this.#log(
        err instanceof GatewayConfigError
          ? `reload refused, the old configuration stays: ${err.message}`
          : `reload failed: ${messageOf(err)}`,
      );
    }
  }
}

/**
 * Starts a gateway: validates the configuration, starts every plugin (a plugin that fails is
 * retried with backoff while the others serve), then listens.
 *
 * @param options The configuration and how to run.
 * @returns The running gateway.
 * @throws {GatewayConfigError} For an invalid configuration file.
 * @throws {GatewayStartError} When the address or the TLS files cannot be used (before any
 *   plugin is started).
 *
 * @example A gateway with no plugins answers its health check
 * ```ts
 * import { parseGatewayConfig, startGateway } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const gateway = await startGateway({
 *   config: parseGatewayConfig(`listen = "127.0.0.1:0"`),
 *   handleSignals: false,
 *   log: () => {},
 * });
 * const health = await fetch(`${gateway.url}/-/healthz`);
 * assert.deepEqual(await health.json(), { status: "ok" });
 * await gateway.stop();
 * ```
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? ((line: string) => console.error(`[gateway] ${line}`));
  const config = typeof options.config === "string"
    ? await loadGatewayConfig(options.config, options.env)
    : options.config;
  const core = new GatewayCore(config, {
    log,
    pluginEnv: options.pluginEnv,
    backoffInitialMs: options.restartBackoffMs,
    env: options.env,
  });
  // Listen first: a bad address or TLS file stops the start before any plugin is spawned.
  // Until the plugins are up, their routes answer 503 and /-/readyz says which are missing.
  const listener = await listen((request, info) => core.fetch(request, info), {
    hostname: config.hostname,
    port: options.port ?? config.port,
    tls: config.tls,
  });
  if (config.pidfile) await writeFile(config.pidfile, `${ownPid()}\n`);
  const gateway = new Gateway(core, listener, log);
  // Signals first: a SIGTERM while plugins start still stops the ones already running.
  gateway._installHandlers(options.handleSignals ?? true);
  await core.start();
  return gateway;
}

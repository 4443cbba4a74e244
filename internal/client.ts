/**
 * `PluginClient`: a connected plugin as the host holds it. It dispenses typed clients, says
 * what it is connected to, and stops the plugin through its process seam (`process.ts`) with
 * go-plugin's kill ladder (docs/protocol.md §6.3, §6.6, §7, §9).
 *
 * @module
 */

import type { ServiceDescriptor } from "./shapes.ts";
import type * as grpc from "@grpc/grpc-js";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import type { GrpcBroker } from "./broker.ts";
import { PluginError, RpcError, Status } from "./errors.ts";
import { type ServiceClient, serviceDefinition, toRpcError } from "./grpc.ts";
import { type ClientSettings, createServiceClient } from "./grpc_client.ts";
import type { HandshakeInfo, Network } from "./handshake.ts";
import { hangUp, type Sockets } from "./hangup.ts";
import { PLUGIN_HEALTH_SERVICE } from "./health.ts";
import { trackClient } from "./lifetime.ts";
import type { Dispensed, HostPluginSet, ReattachConfig } from "./options.ts";
import type { PluginProcess } from "./process.ts";
import { type ExitStatus, removePath } from "./runtime.ts";
import type { TlsConfig } from "./tls.ts";

/**
 * A client of a plugin started with `versionedPlugins`: one `PluginClient` type per version,
 * told apart by `protocolVersion`, so that `dispense()` after a check of the negotiated version
 * is typed by that version's plugin set.
 *
 * @typeParam V The plugin sets by protocol version.
 *
 * @example Dispensing by the negotiated version
 * ```ts
 * import type { VersionedPluginClient } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import { Test } from "../gen/grpctest/grpctest_pb.ts";
 *
 * type Sets = { 1: { kv: typeof KV }; 2: { test: typeof Test } };
 * async function describe(plugin: VersionedPluginClient<Sets>): Promise<string> {
 *   if (plugin.protocolVersion === 2) {
 *     return `doubled: ${(await plugin.dispense("test").double({ input: 2 })).output}`;
 *   }
 *   return `kv: ${(await plugin.dispense("kv").get({ key: "a" })).value.length} bytes`;
 * }
 * ```
 */
export type VersionedPluginClient<V extends Record<number, HostPluginSet>> = {
  [K in keyof V & number]: PluginClient<V[K]> & { readonly protocolVersion: K };
}[keyof V & number];

/**
 * A running plugin, connected. Dispense typed clients from it; kill it when done (or let
 * `await using` do it).
 *
 * @typeParam P The host's plugins, by name.
 *
 * @example Dispensing a typed client, then stopping the plugin
 * ```ts
 * import { startPlugin } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const cwd = await Deno.makeTempDir(); // the KV plugin keeps each value in a file there
 * const pluginFile = new URL("../examples/kv/plugin.ts", import.meta.url).pathname;
 * const plugin = await startPlugin({
 *   cmd: [Deno.execPath(), "run", "-A", "--quiet", pluginFile],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   cwd,
 *   logger: () => {},
 * });
 * try {
 *   await plugin.ping();
 *   const kv = plugin.dispense("kv"); // a ServiceClient<typeof KV>
 *   await kv.put({ key: "a", value: new TextEncoder().encode("1") });
 *   assert.equal(plugin.reattachConfig().pid, plugin.pid);
 * } finally {
 *   await plugin.kill(); // Shutdown over gRPC, then SIGTERM, then SIGKILL
 * }
 * assert.ok(plugin.hasExited);
 * const { code, signal } = await plugin.exited; // code 0 after a clean shutdown
 * await Deno.remove(cwd, { recursive: true });
 * ```
 */
export class PluginClient<P extends HostPluginSet = HostPluginSet> {
  /** The negotiated application protocol version. */
  readonly protocolVersion: number;
  /** `unix` or `tcp`. */
  readonly network: Network;
  /** Socket path or `host:port`. */
  readonly address: string;
  /** The plugin's process id. */
  readonly pid: number;
  /** The plugin's name in logs. */
  readonly name: string;
  /** The host side of the broker: serve callbacks for the plugin, dial the plugin's servers. */
  readonly broker: GrpcBroker;
  /** Settles with the exit status when the plugin process exits. */
  readonly exited: Promise<ExitStatus>;
  /** Whether the connection uses TLS (AutoMTLS or manual). */
  readonly tls: boolean;
  /** The plugin's handshake line as it printed it; undefined after a reattach. */
  readonly handshakeLine: string | undefined;

  readonly #plugins: P;
  readonly #grpc: grpc.Client;
  readonly #sockets: Sockets;
  readonly #tls: TlsConfig | undefined;
  readonly #process: PluginProcess;
  readonly #socketDir: string | undefined;
  readonly #killGraceMs: number;
  readonly #lifetime = new AbortController();
  readonly #dispensed = new Map<string, unknown>();
  readonly #untrack: () => void;
  #hasExited = false;
  #killing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #reattached: boolean;
  /** kill() or close() was called: calls from then on are CANCELLED, not UNAVAILABLE. */
  #closedLocally = false;
  #exitStatus: ExitStatus | undefined;
  readonly #controller: boolean;
  readonly #callSettings: ClientSettings;
  readonly #test: boolean;

  /** @internal Use `startPlugin()`. */
  constructor(init: {
    info: HandshakeInfo;
    plugins: P;
    grpc: grpc.Client;
    /** The channel's sockets (hangup.ts); none for a channel someone else owns. */
    sockets?: Sockets;
    tls?: TlsConfig;
    broker: GrpcBroker;
    name: string;
    process: PluginProcess;
    socketDir?: string;
    killGraceMs: number;
    reattached: boolean;
    controller?: boolean;
    callSettings?: ClientSettings;
    test?: boolean;
    handshakeLine?: string;
  }) {
    this.protocolVersion = init.info.appVersion;
    this.network = init.info.network;
    this.address = init.info.address;
    this.pid = init.process.pid;
    this.name = init.name;
    this.broker = init.broker;
    this.#plugins = init.plugins;
    this.#grpc = init.grpc;
    this.#sockets = init.sockets ?? new Set();
    this.#tls = init.tls;
    this.#process = init.process;
    this.#socketDir = init.socketDir;
    this.#killGraceMs = init.killGraceMs;
    const untrackClient = trackClient(this);
    this.#untrack = () => {
      init.process.release();
      untrackClient();
    };
    this.#reattached = init.reattached;
    this.#controller = init.controller ?? true;
    this.broker.setClosedError(this.#closedError);
    this.#callSettings = init.callSettings ?? {};
    this.#test = init.test ?? false;
    this.tls = init.tls !== undefined;
    this.handshakeLine = init.handshakeLine;
    this.exited = init.process.exited.then((status) => {
      this.#hasExited = true;
      this.#exitStatus = status;
      void this.#close();
      return status;
    });
  }

  /** True once the plugin process has exited. */
  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** The abort signal of this client's life: aborted when it is killed or the plugin exits. */
  get signal(): AbortSignal {
    return this.#lifetime.signal;
  }

  /** A typed client for any service of the plugin, by descriptor. */
  client<S extends ServiceDescriptor>(service: S): ServiceClient<S> {
    return createServiceClient(service, this.#grpc, {
      ...this.#callSettings,
      closed: this.#closedError,
    });
  }

  /**
   * What a call fails with once the connection is gone: CANCELLED after kill() or close(),
   * UNAVAILABLE when the plugin went away by itself.
   */
  readonly #closedError = (): RpcError => {
    const who = `plugin ${JSON.stringify(this.name)} (pid ${this.pid})`;
    if (this.#closedLocally) {
      return new RpcError(Status.CANCELLED, `${who}: the client was closed (kill() or close())`);
    }
    const status = this.#exitStatus;
    const how = !status
      ? "is gone"
      : status.signal
      ? `was killed by ${status.signal}`
      : status.code === null
      ? "exited"
      : `exited with status ${status.code}`;
    return new RpcError(Status.UNAVAILABLE, `${who} ${how}`);
  };

  /**
   * The client of the named plugin of the negotiated version. Throws `unknown-plugin` for a
   * name the host's plugin set lacks.
   */
  dispense<K extends keyof P & string>(name: K): Dispensed<P[K]> {
    if (this.#dispensed.has(name)) return this.#dispensed.get(name) as Dispensed<P[K]>;
    const plugin = this.#plugins[name];
    if (plugin === undefined) {
      throw new PluginError("unknown-plugin", `unknown plugin type: ${name}`);
    }
    const client = typeof plugin === "function"
      ? plugin({ client: (service) => this.client(service), broker: this.broker })
      : this.client(plugin);
    this.#dispensed.set(name, client);
    return client as Dispensed<P[K]>;
  }

  /**
   * The certificate the plugin presents on this connection (DER), read from a TLS session of
   * one health check; undefined without TLS. With AutoMTLS it is the one from the handshake.
   */
  peerCertificate(): Promise<Uint8Array | undefined> {
    if (!this.#tls) return Promise.resolve(undefined);
    const check = serviceDefinition(Health).check;
    return new Promise((resolve, reject) => {
      const call = this.#grpc.makeUnaryRequest(
        check.path,
        check.requestSerialize,
        check.responseDeserialize,
        { service: PLUGIN_HEALTH_SERVICE },
        { deadline: Date.now() + 5000 },
        (err) => {
          if (err) return reject(toRpcError(err));
          const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
          resolve(raw ? new Uint8Array(raw) : undefined);
        },
      );
    });
  }

  /**
   * Checks that the plugin answers (a health check of service `plugin`). Throws an RpcError:
   * `DEADLINE_EXCEEDED` after `timeoutMs` (default 5000), `CANCELLED` when `signal` aborts.
   */
  async ping(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const health = this.client(Health);
    await health.check({ service: PLUGIN_HEALTH_SERVICE }, {
      timeoutMs: options.timeoutMs ?? 5000,
      signal: options.signal,
    });
  }

  /** What another host process needs to reattach to this plugin. */
  reattachConfig(): ReattachConfig {
    const config: ReattachConfig = {
      protocol: "grpc",
      protocolVersion: this.protocolVersion,
      network: this.network,
      address: this.address,
      pid: this.pid,
    };
    if (this.#tls) config.tls = { ...this.#tls };
    if (this.#socketDir) config.socketDir = this.#socketDir;
    if (this.#test) config.test = true;
    return config;
  }

  /**
   * Stops the plugin: asks it to shut down over gRPC, waits `killGraceMs`, then sends SIGTERM,
   * waits again, then SIGKILL. Removes its socket directory. Idempotent; safe after the plugin
   * has exited. Calls made afterwards reject with an RpcError `CANCELLED`.
   */
  kill(): Promise<void> {
    this.#closedLocally = true;
    this.#killing ??= this.#kill();
    return this.#killing;
  }

  async #kill(): Promise<void> {
    // A plugin in debug mode (reattach `test`) belongs to whoever started it: only disconnect.
    if (!this.#hasExited && !this.#test) {
      let answered = false;
      // Before the plugin stops its brokered servers under them (see GrpcBroker.dial).
      this.broker.closeConnections();
      // An RPCPlugin plugin has no controller: straight to SIGTERM.
      if (this.#controller) {
        try {
          await this.client(GRPCController).shutdown({}, { timeoutMs: this.#killGraceMs });
          answered = true;
        } catch (err) {
          // grpc-go's hard stop often kills its own reply: UNAVAILABLE still means "stopping".
          answered = (toRpcError(err) as RpcError).code === 14;
        }
      }
      if (!this.#controller || !(await this.#waitExit(this.#killGraceMs))) {
        const process = this.#process;
        if (process.owned) {
          process.signal("SIGTERM");
          if (!(await this.#waitExit(this.#killGraceMs))) {
            process.signal("SIGKILL");
            await this.exited;
          }
        } else if (answered || (await this.#answers())) {
          // Attached: only signal the pid when the plugin still answers at its address, so a
          // reused pid is never hit.
          process.signal("SIGTERM");
          if (!(await this.#waitExit(this.#killGraceMs)) && (await this.#answers())) {
            process.signal("SIGKILL");
            await this.#waitExit(this.#killGraceMs);
          }
        }
      }
    }
    // Whatever the plugin left in its process group (the real plugin behind `sh -c`) goes too.
    this.#process.killStragglers();
    await this.#close();
    if (this.#socketDir) await removePath(this.#socketDir);
  }

  async #answers(): Promise<boolean> {
    try {
      await this.ping({ timeoutMs: 500 });
      return true;
    } catch {
      return false;
    }
  }

  async #waitExit(ms: number): Promise<boolean> {
    if (this.#hasExited) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  /**
   * Disconnects without stopping the plugin (for a handoff to another host through
   * {@link PluginClient.reattachConfig}). Calls made afterwards reject with an RpcError
   * `CANCELLED`.
   */
  async close(): Promise<void> {
    this.#closedLocally = true;
    this.#reattached = true;
    await this.#close();
  }

  #close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lifetime.abort();
      this.#untrack();
      // The channel first: a call made once `exited` has settled must see it closed. Its
      // sockets are destroyed before grpc-js can say GOAWAY: Deno 2.9.6 can abort a plugwire
      // plugin that receives one (hangup.ts); go-plugin's hosts end connections the same way.
      hangUp(this.#sockets);
      this.#grpc.close();
      await this.broker.close();
      if (this.#hasExited && !this.#reattached && this.#socketDir) {
        await removePath(this.#socketDir);
      }
    })();
    return this.#closing;
  }

  /** Kills the plugin (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

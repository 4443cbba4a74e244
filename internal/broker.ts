/**
 * go-plugin's GRPCBroker (docs/protocol.md §6.5, non-multiplexed): extra gRPC connections between
 * host and plugin, in either direction, negotiated over one `plugin.GRPCBroker/StartStream`
 * stream of `ConnInfo` messages. The side that accepts opens a fresh listener and sends its
 * address under a new id; the other side dials that id.
 *
 * @module
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { AsyncQueue, Rendezvous } from "./queue.ts";
import type { GrpcOptions, ServiceDescriptor } from "./shapes.ts";
import * as grpc from "@grpc/grpc-js";
import type { ConnInfo, ConnInfoSchema } from "../gen/core/plugin/grpc_broker_pb.ts";
import { PluginError, RpcError, Status } from "./errors.ts";
import type { ServiceClient } from "./grpc.ts";
import { type ClosedError, createServiceClient } from "./grpc_client.ts";
import { registrarFor, type ServiceRegistrar } from "./grpc_server.ts";
import type { Network } from "./handshake.ts";
import {
  channelCredentials,
  rejectOutOfDateClientCert,
  serverCredentials,
  type TlsConfig,
} from "./tls.ts";
import { bindServer, type BoundAddress, grpcTarget } from "./transport.ts";
import { clientSockets, hangUp, serverSockets, type Sockets } from "./hangup.ts";

/** A ConnInfo as this side writes it. */
type ConnInfoInit = MessageInitShape<typeof ConnInfoSchema>;

/** go-plugin waits this long for connection info, and keeps unclaimed info this long. */
export const BROKER_WAIT_MS = 5000;

/** How many ids' addresses a broker remembers for dialing them again (the latest ones). */
const REMEMBERED_ADDRESSES = 256;

/** A dialed connection, shared by every dial of its id while it is open. */
interface PooledConnection {
  readonly id: number;
  readonly client: grpc.Client;
  readonly sockets: Sockets;
  /** Leases not closed yet. */
  users: number;
}

/**
 * A connection dialed through the broker.
 *
 * @example A plugin method calling the host back
 * ```ts
 * import type { BrokerConnection, GrpcBroker } from "@plugwire/plugwire/plugin";
 * import { AddHelper } from "../gen/counter/counter_pb.ts";
 *
 * // `broker` is the plugin's (`ctx.broker` in a method); the host sent `id`.
 * async function add(broker: GrpcBroker, id: number, a: bigint, b: bigint): Promise<bigint> {
 *   const connection: BrokerConnection = await broker.dial(id);
 *   try {
 *     return (await connection.client(AddHelper).sum({ a, b })).r;
 *   } finally {
 *     connection.close();
 *   }
 * }
 * ```
 */
export interface BrokerConnection {
  /** A typed client for a service served at the other end. */
  client<S extends ServiceDescriptor>(service: S): ServiceClient<S>;
  /**
   * Hands the connection back; the last lease of an id ends it, without a GOAWAY (see
   * {@link GrpcBroker.dial}).
   */
  close(): void;
}

/**
 * A server accepted through the broker. The other side dials its `id`; `close()` (or leaving
 * an `await using` block, or aborting the `signal` it was served with) stops it before the
 * broker closes.
 *
 * @example Serving a callback for the length of one task
 * ```ts
 * import type { BrokerServer, GrpcBroker } from "@plugwire/plugwire/host";
 * import { AddHelper } from "../gen/counter/counter_pb.ts";
 *
 * async function withAdder(broker: GrpcBroker, task: (id: number) => Promise<void>) {
 *   await using server: BrokerServer = await broker.serve((registrar) => {
 *     registrar.add(AddHelper, { sum: ({ a, b }) => ({ r: a + b }) });
 *   });
 *   await task(server.id); // the server is closed when the block ends
 * }
 * ```
 */
export interface BrokerServer {
  /** The id the other side dials. */
  readonly id: number;
  /** Stops serving and removes the socket file. Idempotent. */
  close(): Promise<void>;
  /** {@link BrokerServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Options of {@link GrpcBroker.acceptAndServe} and {@link GrpcBroker.serve}.
 *
 * @example A callback server that lives as long as a request
 * ```ts
 * import type { BrokerServeOptions } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const request = new AbortController();
 * const options: BrokerServeOptions = { signal: request.signal };
 * // await broker.serve(register, options); ... request.abort() closes the server
 * request.abort();
 * assert.ok(options.signal?.aborted);
 * ```
 */
export interface BrokerServeOptions {
  /**
   * Aborting it before the server is ready rejects with a PluginError (`closed`) and leaves
   * nothing; aborting it later closes the server.
   */
  signal?: AbortSignal;
}

/**
 * Options of {@link GrpcBroker.dial}.
 *
 * @example Giving up on a slow peer after one second, or when the caller cancels
 * ```ts
 * import type { BrokerDialOptions } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const caller = new AbortController();
 * const options: BrokerDialOptions = { timeoutMs: 1000, signal: caller.signal };
 * // const connection = await broker.dial(id, options);
 * assert.equal(options.timeoutMs, 1000);
 * ```
 */
export interface BrokerDialOptions {
  /** How long to wait for the other side's address. @default {5000} */
  timeoutMs?: number;
  /** Aborts the wait for the address: the dial rejects with a PluginError (`closed`). */
  signal?: AbortSignal;
}

/** How this side's broker listens and dials. */
export interface BrokerSettings {
  network: Network;
  /** Directory for brokered unix sockets. */
  socketDir?: string;
  tls?: TlsConfig;
  grpcServerOptions?: GrpcOptions;
  grpcChannelOptions?: GrpcOptions;
}

/**
 * One side of the broker. The host and the plugin each have one; ids are per side and start
 * at 1, and an id sent by one side is only dialed by the other.
 *
 * @example A host serving a callback that the plugin dials
 * ```ts
 * import { startPlugin } from "@plugwire/plugwire/host";
 * import { AddHelper, Counter } from "../gen/counter/counter_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const cwd = await Deno.makeTempDir(); // the counter plugin keeps its counters there
 * const pluginFile = new URL("../examples/counter/plugin.ts", import.meta.url).pathname;
 * const plugin = await startPlugin({
 *   cmd: [Deno.execPath(), "run", "-A", "--quiet", pluginFile],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { counter: Counter },
 *   cwd,
 *   logger: () => {},
 * });
 * try {
 *   const counter = plugin.dispense("counter");
 *   // The plugin's Put adds by calling this AddHelper back, on a connection that it dials
 *   // through its broker. Each id is dialed once: serve again for the next Put.
 *   await using adder = await plugin.broker.serve((registrar) => {
 *     registrar.add(AddHelper, { sum: ({ a, b }) => ({ r: a + b }) });
 *   });
 *   await counter.put({ addServer: adder.id, key: "hits", value: 2n });
 *   assert.equal((await counter.get({ key: "hits" })).value, 2n);
 * } finally {
 *   await plugin.kill();
 *   await Deno.remove(cwd, { recursive: true });
 * }
 * ```
 */
export class GrpcBroker {
  #lastId = 0;
  readonly #settings: BrokerSettings;
  /** Connection info from the other side, by id, for the dial that waits for it. */
  readonly #arrivals = new Rendezvous<number, ConnInfo>(BROKER_WAIT_MS);
  readonly #servers = new Set<BrokerServer>();
  /** Dialed connections by id, while leased. */
  readonly #pool = new Map<number, PooledConnection>();
  /** The addresses of ids dialed before, oldest first. */
  readonly #addresses = new Map<number, ConnInfo>();
  #send: ((info: ConnInfoInit) => void) | undefined;
  #closed = false;
  #closedError: ClosedError = () => new RpcError(Status.CANCELLED, "the broker is closed");

  /** @internal */
  constructor(settings: BrokerSettings) {
    this.#settings = settings;
  }

  /**
   * Names the error of a dial or call once the connection is gone (the host's client knows
   * whether it was closed or the plugin went away). @internal
   */
  setClosedError(closedError: () => RpcError): void {
    this.#closedError = closedError;
  }

  /** The next id of this side (1, 2, …). */
  nextId(): number {
    return ++this.#lastId;
  }

  /**
   * Runs the broker over its `StartStream` call. `open` receives what this side sends and
   * returns what the other side sends: the host passes its outgoing messages to the call it
   * starts, the plugin returns the requests of the call it serves. The returned iterable is
   * the outgoing side, ending when the incoming side does.
   * @internal
   */
  runStream(
    open: (outgoing: AsyncIterable<ConnInfoInit>) => AsyncIterable<ConnInfo>,
  ): AsyncIterable<ConnInfoInit> {
    const outgoing = new AsyncQueue<ConnInfoInit>();
    this.#send = (info) => outgoing.push(info);
    const incoming = open(outgoing);
    (async () => {
      try {
        for await (const info of incoming) this.#receive(info);
      } catch {
        // The stream ends with the connection; dials then time out with a clear error.
      } finally {
        outgoing.end();
      }
    })();
    return outgoing;
  }

  #receive(info: ConnInfo): void {
    // Like go-plugin: one slot per id, dropped if nobody dials it within 5 s.
    this.#arrivals.deliver(info.serviceId, info);
  }

  /**
   * Serves services on a fresh listener under `id` and tells the other side where it is.
   * Serving goes on until the broker (that is, the client or plugin) closes.
   */
  async acceptAndServe(
    id: number,
    register: (registrar: ServiceRegistrar<GrpcBroker>) => void,
    options: BrokerServeOptions = {},
  ): Promise<BrokerServer> {
    const { signal } = options;
    const aborted = () =>
      new PluginError("closed", `Cannot accept broker id ${id}: aborted`, {
        cause: signal?.reason,
      });
    if (signal?.aborted) throw aborted();
    if (this.#closed) throw new PluginError("closed", "Cannot accept: the broker is closed");
    if (!this.#send) {
      throw new PluginError("broker", "Cannot accept: the other side has no broker stream");
    }
    const server = new grpc.Server({
      ...this.#settings.grpcServerOptions,
      ...(this.#settings.tls ? { interceptors: [rejectOutOfDateClientCert] } : {}),
    });
    register(registrarFor(server, this));
    let bound: BoundAddress;
    try {
      bound = await bindServer(server, serverCredentials(this.#settings.tls), {
        network: this.#settings.network,
        socketDir: this.#settings.socketDir,
      });
    } catch (cause) {
      server.forceShutdown();
      throw new PluginError("broker", `Cannot accept broker id ${id}: ${String(cause)}`, { cause });
    }
    const sockets = serverSockets(server);
    let closing: Promise<void> | undefined;
    const close = () =>
      closing ??= (async () => {
        signal?.removeEventListener("abort", onAbort);
        this.#servers.delete(handle);
        // The dialing side may still hold its connection (it pools them): end it without the
        // GOAWAY of forceShutdown (see hangup.ts).
        hangUp(sockets);
        server.forceShutdown();
        await bound.cleanup();
      })();
    const onAbort = () => void close();
    const handle: BrokerServer = { id, close, [Symbol.asyncDispose]: close };
    if (signal?.aborted) {
      await close();
      throw aborted();
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#servers.add(handle);
    this.#send({ serviceId: id, network: bound.network, address: bound.address });
    return handle;
  }

  /**
   * Takes the next id and serves on it ({@link GrpcBroker.acceptAndServe}); the other side
   * dials the returned server's `id`.
   */
  serve(
    register: (registrar: ServiceRegistrar<GrpcBroker>) => void,
    options: BrokerServeOptions = {},
  ): Promise<BrokerServer> {
    return this.acceptAndServe(this.nextId(), register, options);
  }

  /**
   * Dials the server the other side accepted under `id`, waiting up to 5 s for its address.
   * Rejects with a PluginError (`broker`) when no address arrives in time, and with an
   * RpcError (CANCELLED after a local close, UNAVAILABLE when the peer went away) once the
   * connection is gone.
   *
   * Connections are pooled by id: a dial of an id that has an open connection shares it, and
   * `close()` hands it back; the last `close()` ends it. An id can be dialed again later (its
   * address is remembered; go-plugin hands it out once). A connection always ends by closing its
   * socket, never with a GOAWAY, which can abort Deno 2.9.6 at the other end (README "Known
   * issues"); and never lingers unused, so that a peer closing its server (go-plugin's does with
   * a GOAWAY) finds nothing of ours to abort.
   */
  async dial(id: number, options: BrokerDialOptions = {}): Promise<BrokerConnection> {
    if (this.#closed) throw this.#closedError();
    let pooled = this.#pool.get(id);
    if (!pooled) {
      const info = this.#addresses.get(id) ??
        await this.#waitFor(id, options.timeoutMs ?? BROKER_WAIT_MS, options.signal);
      if (this.#closed) throw this.#closedError();
      this.#remember(id, info);
      // Another dial of the same id may have been first.
      pooled = this.#pool.get(id) ?? this.#open(id, info);
    }
    return this.#lease(pooled);
  }

  #remember(id: number, info: ConnInfo): void {
    this.#addresses.delete(id);
    this.#addresses.set(id, info);
    if (this.#addresses.size > REMEMBERED_ADDRESSES) {
      this.#addresses.delete(this.#addresses.keys().next().value!);
    }
  }

  #open(id: number, info: ConnInfo): PooledConnection {
    const network = info.network === "tcp" ? "tcp" : "unix";
    const { credentials, options: tlsOptions } = channelCredentials(this.#settings.tls);
    const sockets = clientSockets(credentials);
    const client = new grpc.Client(grpcTarget(network, info.address), credentials, {
      ...this.#settings.grpcChannelOptions,
      ...tlsOptions,
    });
    const pooled: PooledConnection = { id, client, sockets, users: 0 };
    this.#pool.set(id, pooled);
    return pooled;
  }

  #lease(pooled: PooledConnection): BrokerConnection {
    pooled.users++;
    let released = false;
    return {
      client: (service) =>
        createServiceClient(service, pooled.client, { closed: this.#closedError }),
      close: () => {
        if (released) return;
        released = true;
        if (--pooled.users === 0) this.#drop(pooled);
      },
    };
  }

  #drop(pooled: PooledConnection): void {
    if (this.#pool.get(pooled.id) === pooled) this.#pool.delete(pooled.id);
    hangUp(pooled.sockets);
    pooled.client.close();
  }

  /**
   * Ends every dialed connection now, leases or not, without a GOAWAY. A host does this before
   * it asks the plugin to shut down, so that no server of the plugin closes under one. @internal
   */
  closeConnections(): void {
    for (const pooled of [...this.#pool.values()]) this.#drop(pooled);
  }

  #waitFor(id: number, timeoutMs: number, signal?: AbortSignal): Promise<ConnInfo> {
    return this.#arrivals.take(
      id,
      timeoutMs,
      () => new PluginError("broker", `timeout waiting for connection info (broker id ${id})`),
      {
        signal,
        aborted: () =>
          new PluginError("closed", `Cannot dial broker id ${id}: aborted`, {
            cause: signal?.reason,
          }),
      },
    );
  }

  /** Closes every brokered server and connection. Idempotent. @internal */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#arrivals.close((id) => {
      const err = this.#closedError();
      return new RpcError(err.code, `Cannot dial broker id ${id}: ${err.details}`);
    });
    this.closeConnections();
    await Promise.all([...this.#servers].map((s) => s.close()));
  }
}

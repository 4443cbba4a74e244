/**
 * Ending a brokered gRPC connection without an HTTP/2 GOAWAY: by destroying its socket, so the
 * peer sees the connection end and nothing to parse.
 *
 * Deno 2.9.6 can abort the whole process inside nghttp2 while it handles a GOAWAY received on
 * a session that just finished a call (denoland/deno#36788): a client that gets one from a
 * server closing under it dies within a few rounds, a server that gets one from a client
 * closing after each call dies within about 140 rounds. A plugwire broker therefore never
 * closes its connections gracefully (see README "Known issues"). grpc-js has no public hook for
 * the sockets; the two seams used here are covered by tests/broker_soak_test.ts, and without
 * them a close falls back to grpc-js's graceful one.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";

/** A socket as far as hanging up goes. */
interface Socket {
  /** Bytes accepted but not yet written to the kernel (Node's Writable). */
  readonly writableLength?: number;
  destroy(): void;
  once(event: "close", fn: () => void): unknown;
}

/** The live sockets of a channel or a server; {@link hangUp} ends them. */
export type Sockets = Set<Socket>;

function track(sockets: Sockets, socket: Socket): void {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
}

interface SecureConnector {
  connect(socket: Socket): Promise<{ socket: Socket; secure: boolean }>;
}

/**
 * The sockets every channel built with `credentials` opens (each connection's TCP or unix socket
 * passes through the credentials' connector, TLS or not). Call before building the channel.
 */
export function clientSockets(credentials: grpc.ChannelCredentials): Sockets {
  const sockets: Sockets = new Set();
  const target = credentials as unknown as {
    _createSecureConnector?: (...args: unknown[]) => SecureConnector;
  };
  const create = target._createSecureConnector?.bind(target);
  if (!create) return sockets;
  target._createSecureConnector = (...args) =>
    new Proxy(create(...args), {
      get(connector, property) {
        if (property === "connect") {
          return async (socket: Socket) => {
            track(sockets, socket);
            const result = await connector.connect(socket);
            if (result.socket !== socket) track(sockets, result.socket);
            return result;
          };
        }
        const value = Reflect.get(connector, property, connector);
        return typeof value === "function" ? value.bind(connector) : value;
      },
    });
  return sockets;
}

/** The sockets of every connection `server` accepts from now on. Call once it is bound. */
export function serverSockets(server: grpc.Server): Sockets {
  const sockets: Sockets = new Set();
  const listeners = (server as unknown as {
    http2Servers?: Map<{ on(event: "connection", fn: (socket: Socket) => void): unknown }, unknown>;
  }).http2Servers;
  for (const listener of listeners?.keys() ?? []) {
    listener.on("connection", (socket) => track(sockets, socket));
  }
  return sockets;
}

/** Ends every socket at once, without a GOAWAY. */
export function hangUp(sockets: Sockets): void {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
}

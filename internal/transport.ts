/**
 * Where a gRPC server listens and how a client reaches it: unix sockets (go-plugin's default on
 * every OS but Windows) and TCP on 127.0.0.1 within a port range (docs/protocol.md §4).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { PluginError } from "./errors.ts";
import type { Network } from "./handshake.ts";
import {
  chgrp,
  chmod,
  getEnv,
  joinPath,
  pathExists,
  removePathSync,
  resolveGroup,
  tempDir,
} from "./runtime.ts";

/** Where to listen. */
export interface ListenOptions {
  network: Network;
  /** Directory for the socket file (default: `PLUGIN_UNIX_SOCKET_DIR`, else the temp dir). */
  socketDir?: string;
  /** Group (name or gid) that may connect: the socket gets that group and mode 0660. */
  socketGroup?: string;
  /** Lowest TCP port to try (inclusive); with `maxPort` both 0, the OS picks one. */
  minPort?: number;
  /** Highest TCP port to try (inclusive). */
  maxPort?: number;
}

/** A bound server address, and how to release it. */
export interface BoundAddress {
  network: Network;
  /** Socket path or `127.0.0.1:port`, as printed in the handshake. */
  address: string;
  /** Removes the socket file, if any. Idempotent. */
  cleanup(): Promise<void>;
}

/** The grpc-js target string for a handshake address. */
export function grpcTarget(network: Network, address: string): string {
  return network === "unix" ? `unix://${address}` : address;
}

function bindOnce(
  server: grpc.Server,
  target: string,
  creds: grpc.ServerCredentials,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, creds, (err, port) => err ? reject(err) : resolve(port));
  });
}

/** A fresh socket path `<dir>/plugin<digits>`, the shape of go-plugin's `os.CreateTemp(dir, "plugin")`. */
export function freshSocketPath(dir: string): string {
  for (;;) {
    const digits = String(Math.floor(Math.random() * 1e10)).padStart(10, "0");
    const candidate = joinPath(dir, `plugin${digits}`);
    if (!pathExists(candidate)) return candidate;
  }
}

/**
 * Binds `server` as `options` say. Throws a {@link PluginError} (`misconfigured`) for an
 * impossible port range, or the OS error when nothing can be bound.
 */
export async function bindServer(
  server: grpc.Server,
  creds: grpc.ServerCredentials,
  options: ListenOptions,
): Promise<BoundAddress> {
  if (options.network === "unix") {
    const dir = options.socketDir ?? (getEnv("PLUGIN_UNIX_SOCKET_DIR") || tempDir());
    const path = freshSocketPath(dir);
    await bindOnce(server, `unix://${path}`, creds);
    if (options.socketGroup) {
      await chgrp(path, await resolveGroup(options.socketGroup));
      await chmod(path, 0o660);
    }
    let cleaned = false;
    return {
      network: "unix",
      address: path,
      // Synchronous: one unlink, where the promise-based remove costs ~1.5 ms the first time, on
      // the Shutdown path (bench/README.md, "Shutdown").
      cleanup: () => {
        if (!cleaned) removePathSync(path);
        cleaned = true;
        return Promise.resolve();
      },
    };
  }

  const min = options.minPort ?? 0;
  const max = options.maxPort ?? 0;
  if (min > max) {
    throw new PluginError(
      "misconfigured",
      `PLUGIN_MIN_PORT value of ${min} is greater than PLUGIN_MAX_PORT value of ${max}`,
    );
  }
  let lastError: unknown;
  for (let port = min; port <= max; port++) {
    try {
      const bound = await bindOnce(server, `127.0.0.1:${port}`, creds);
      return { network: "tcp", address: `127.0.0.1:${bound}`, cleanup: () => Promise.resolve() };
    } catch (err) {
      lastError = err;
    }
  }
  throw new PluginError("misconfigured", "couldn't bind plugin TCP listener", {
    cause: lastError,
  });
}

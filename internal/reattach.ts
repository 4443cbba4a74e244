/**
 * Reading a {@link ReattachConfig} that another process wrote as JSON (an environment variable,
 * a file): checked field by field, so a bad config is a clear error at once rather than a
 * failed dial later.
 *
 * @module
 */

import type { ReattachConfig } from "./options.ts";
import { PluginError } from "./errors.ts";

const MAX_PID = 2 ** 31 - 1;

/**
 * Parses and checks a reattach config written with `JSON.stringify(plugin.reattachConfig())`.
 * Unknown fields are dropped. Throws a {@link PluginError} (`misconfigured`) naming the first
 * problem, never any other error.
 *
 * @param json The JSON text.
 * @returns The config, for `startPlugin({ reattach })`.
 *
 * @example Reattaching from an environment variable
 * ```ts
 * import { parseReattachConfig, PluginError } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const json = `{"protocol":"grpc","protocolVersion":1,"network":"unix",` +
 *   `"address":"/tmp/plugin123/plugin.sock","pid":4242}`;
 * const reattach = parseReattachConfig(json); // then startPlugin({ reattach, ... })
 * assert.equal(reattach.pid, 4242);
 * assert.throws(
 *   () => parseReattachConfig(`{"protocol":"grpc","pid":"4242"}`),
 *   (err) => err instanceof PluginError && err.code === "misconfigured",
 * );
 * ```
 */
export function parseReattachConfig(json: string): ReattachConfig {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw bad(`it is not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw bad("it is not a JSON object");
  if (value.protocol !== "grpc") throw bad(`protocol must be "grpc"`);
  const { protocolVersion, network, address, pid, tls, socketDir } = value;
  if (!Number.isSafeInteger(protocolVersion) || (protocolVersion as number) < 0) {
    throw bad("protocolVersion must be a whole number");
  }
  if (network !== "unix" && network !== "tcp") throw bad(`network must be "unix" or "tcp"`);
  if (typeof address !== "string" || address === "" || address.includes("\0")) {
    throw bad("address must be a socket path or host:port");
  }
  if (!Number.isSafeInteger(pid) || (pid as number) < 1 || (pid as number) > MAX_PID) {
    throw bad("pid must be a process id");
  }
  const config: ReattachConfig = {
    protocol: "grpc",
    protocolVersion: protocolVersion as number,
    network,
    address,
    pid: pid as number,
  };
  if (tls !== undefined) {
    if (!isObject(tls)) throw bad("tls must be an object");
    for (const field of ["cert", "key", "ca"] as const) {
      if (typeof tls[field] !== "string") throw bad(`tls.${field} must be PEM text`);
    }
    if (tls.serverName !== undefined && typeof tls.serverName !== "string") {
      throw bad("tls.serverName must be a string");
    }
    config.tls = {
      cert: tls.cert as string,
      key: tls.key as string,
      ca: tls.ca as string,
      ...(tls.serverName === undefined ? {} : { serverName: tls.serverName as string }),
    };
  }
  if (socketDir !== undefined) {
    if (typeof socketDir !== "string" || socketDir === "") throw bad("socketDir must be a path");
    config.socketDir = socketDir;
  }
  return config;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(why: string): PluginError {
  return new PluginError("misconfigured", `Bad reattach config: ${why}`);
}

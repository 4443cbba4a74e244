/**
 * The errors plugwire throws: one {@link PluginError} class with a code per failure that
 * go-plugin names, and {@link RpcError} for a failed call. Messages keep go-plugin's wording
 * where users know it (so they can search for it) and add what to do next.
 *
 * @module
 */

/**
 * What went wrong, as a stable string a caller can switch on.
 *
 * - `misconfigured`: the options given to `serve()` or `startPlugin()` cannot work together.
 * - `unrecognized-handshake`: the plugin's first stdout line is not a handshake line.
 * - `incompatible-core-version`: the plugin speaks another core protocol version.
 * - `incompatible-app-version`: no application protocol version in common.
 * - `unknown-network`: the handshake names a network other than `unix` or `tcp`.
 * - `unsupported-protocol`: the plugin speaks `netrpc` (or another protocol) instead of `grpc`.
 * - `start-timeout`: no handshake line within `startTimeoutMs`.
 * - `exited-before-connect`: the plugin exited before printing its handshake line.
 * - `checksum-mismatch`: the plugin executable does not match the expected checksum.
 * - `process-not-found`: a reattach configuration points at nothing that answers.
 * - `broker-mux-unsupported`: the host asked for a multiplexed broker the plugin lacks.
 * - `tls-required`: the host asked for mTLS and the plugin answered without a certificate.
 * - `bad-certificate`: a certificate in the handshake or the options cannot be used.
 * - `unknown-plugin`: `dispense()` was asked for a name the negotiated plugin set lacks.
 * - `connection-failed`: the plugin's address did not accept a gRPC connection.
 * - `closed`: the client was killed or the plugin has exited.
 * - `broker`: a broker connection could not be made.
 *
 * @example Telling the user what to do next
 * ```ts
 * import { PluginError } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * function advice(err: unknown): string {
 *   if (!(err instanceof PluginError)) return "unexpected error";
 *   switch (err.code) {
 *     case "incompatible-app-version":
 *       return "upgrade the plugin";
 *     case "start-timeout":
 *     case "exited-before-connect":
 *       return `the plugin did not start:\n${err.stderrTail.join("\n")}`;
 *     default:
 *       return err.message;
 *   }
 * }
 * const err = new PluginError("incompatible-app-version", "incompatible API version");
 * assert.equal(advice(err), "upgrade the plugin");
 * ```
 */
export type PluginErrorCode =
  | "misconfigured"
  | "unrecognized-handshake"
  | "incompatible-core-version"
  | "incompatible-app-version"
  | "unknown-network"
  | "unsupported-protocol"
  | "start-timeout"
  | "exited-before-connect"
  | "checksum-mismatch"
  | "process-not-found"
  | "broker-mux-unsupported"
  | "tls-required"
  | "bad-certificate"
  | "unknown-plugin"
  | "connection-failed"
  | "closed"
  | "broker";

/**
 * Options of a {@link PluginError}.
 *
 * @example Keeping the plugin's last words
 * ```ts
 * import { PluginError, type PluginErrorOptions } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const options: PluginErrorOptions = { stderrTail: ["panic: no config"], path: "./kv-plugin" };
 * const err = new PluginError("exited-before-connect", "plugin exited", options);
 * assert.deepEqual(err.stderrTail, ["panic: no config"]);
 * assert.equal(err.path, "./kv-plugin");
 * ```
 */
export interface PluginErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** The last lines the plugin wrote to stderr, when they help explain the failure. */
  stderrTail?: string[];
  /** The plugin executable, when known. */
  path?: string;
  /** The process the failed start had started, when it got that far (it is gone by then). */
  pid?: number;
}

/**
 * A failure to start, reach or talk to a plugin, with a {@link PluginErrorCode}.
 *
 * @example Telling a version mismatch from other failures
 * ```ts
 * import { PluginError } from "@plugwire/plugwire";
 * import assert from "node:assert/strict";
 *
 * const err: unknown = new PluginError("incompatible-app-version", "incompatible API version");
 * assert.ok(err instanceof PluginError && err.code === "incompatible-app-version");
 * assert.equal(err.name, "PluginError");
 * ```
 */
export class PluginError extends Error {
  /** What went wrong. */
  readonly code: PluginErrorCode;
  /** The last lines the plugin wrote to stderr, oldest first (empty when not relevant). */
  readonly stderrTail: string[];
  /** The plugin executable, when known. */
  readonly path?: string;
  /** The process a failed start had started (killed before the error is thrown). */
  readonly pid?: number;

  /**
   * Creates an error.
   *
   * @param code What went wrong.
   * @param message A sentence saying what happened and what to do.
   * @param options Cause and diagnostics.
   */
  constructor(code: PluginErrorCode, message: string, options: PluginErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PluginError";
    this.code = code;
    this.stderrTail = options.stderrTail ?? [];
    if (options.path !== undefined) this.path = options.path;
    if (options.pid !== undefined) this.pid = options.pid;
  }
}

/**
 * gRPC status codes, by name (the numbers are the wire's).
 *
 * @example
 * ```ts
 * import { Status } from "@plugwire/plugwire";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Status.UNAVAILABLE, 14);
 * ```
 */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A gRPC status code number (see {@link Status}).
 *
 * @example Deciding whether to retry a call
 * ```ts
 * import { RpcError, Status, type StatusCode } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * function retryable(code: StatusCode): boolean {
 *   return code === Status.UNAVAILABLE || code === Status.DEADLINE_EXCEEDED;
 * }
 * assert.ok(retryable(new RpcError(Status.UNAVAILABLE, "connection refused").code));
 * assert.ok(!retryable(Status.NOT_FOUND));
 * ```
 */
export type StatusCode = typeof Status[keyof typeof Status];

const statusNames: Record<number, string> = Object.fromEntries(
  Object.entries(Status).map(([name, code]) => [code, name]),
);

/**
 * A gRPC call that ended with a status other than OK. Plugin implementations throw it to
 * choose the status the caller sees; any other error thrown by an implementation reaches the
 * caller as `UNKNOWN`, as in grpc-go.
 *
 * @example Rejecting a request from a plugin method
 * ```ts
 * import { RpcError, Status } from "@plugwire/plugwire";
 * import assert from "node:assert/strict";
 *
 * const err = new RpcError(Status.NOT_FOUND, "no such key: a");
 * assert.equal(err.message, "NOT_FOUND: no such key: a");
 * assert.equal(err.code, Status.NOT_FOUND);
 * ```
 */
export class RpcError extends Error {
  /** The gRPC status code. */
  readonly code: StatusCode;
  /** The status message sent by the peer. */
  readonly details: string;
  /**
   * Response metadata, lower-case keys: the headers and trailers the peer sent with the failed
   * call (trailers win on a clash). Thrown by a plugin method, it is sent as trailers.
   */
  readonly metadata: Record<string, string>;

  /**
   * Creates an error.
   *
   * @param code The gRPC status code.
   * @param details The status message.
   * @param options The underlying error and the response metadata, if any.
   */
  constructor(
    code: StatusCode,
    details: string,
    options?: { cause?: unknown; metadata?: Record<string, string> },
  ) {
    super(
      `${statusNames[code] ?? code}: ${details}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "RpcError";
    this.code = code;
    this.details = details;
    this.metadata = { ...options?.metadata };
  }

  /**
   * Turns anything thrown into an `RpcError`: an `RpcError` as is; an abort as `CANCELLED`, a
   * timeout (`AbortSignal.timeout()`) as `DEADLINE_EXCEEDED`; an object with a gRPC status
   * `code` (a grpc-js `ServiceError`) with its code, details and metadata; anything else as
   * `UNKNOWN` with its message, as grpc-go reports a plain error.
   *
   * @param reason What was thrown.
   * @returns The error, with `reason` as its cause unless it already was an `RpcError`.
   *
   * @example Handling any failure of a call by its status code
   * ```ts
   * import { RpcError, Status } from "@plugwire/plugwire/host";
   * import assert from "node:assert/strict";
   *
   * assert.equal(RpcError.from(new Error("disk full")).code, Status.UNKNOWN);
   * assert.equal(RpcError.from(new DOMException("late", "TimeoutError")).code, Status.DEADLINE_EXCEEDED);
   * const grpcJsError = { code: 5, details: "no such key", metadata: { getMap: () => ({ a: "1" }) } };
   * const err = RpcError.from(grpcJsError);
   * assert.equal(err.code, Status.NOT_FOUND);
   * assert.deepEqual(err.metadata, { a: "1" });
   * ```
   */
  static from(reason: unknown): RpcError {
    if (reason instanceof RpcError) return reason;
    const named = (reason as { name?: unknown } | null)?.name;
    const message = reason instanceof Error
      ? reason.message
      : typeof (reason as { message?: unknown } | null)?.message === "string"
      ? (reason as { message: string }).message
      : String(reason);
    if (named === "AbortError") return new RpcError(Status.CANCELLED, message, { cause: reason });
    if (named === "TimeoutError") {
      return new RpcError(Status.DEADLINE_EXCEEDED, message, { cause: reason });
    }
    const code = (reason as { code?: unknown } | null)?.code;
    if (typeof code === "number" && Number.isInteger(code) && code in statusNames && code !== 0) {
      const e = reason as { details?: unknown; metadata?: unknown };
      return new RpcError(code as StatusCode, typeof e.details === "string" ? e.details : message, {
        cause: reason,
        metadata: metadataRecord(e.metadata),
      });
    }
    return new RpcError(Status.UNKNOWN, message, { cause: reason });
  }
}

/** A plain record of grpc-js `Metadata` (or of a record), string values only. */
export function metadataRecord(metadata: unknown): Record<string, string> {
  const map = typeof (metadata as { getMap?: unknown } | null)?.getMap === "function"
    ? (metadata as { getMap(): Record<string, unknown> }).getMap()
    : metadata && typeof metadata === "object"
    ? metadata as Record<string, unknown>
    : {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map)) {
    if (typeof value === "string") out[key.toLowerCase()] = value;
  }
  return out;
}

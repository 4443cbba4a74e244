/**
 * Interceptors, in the style of connect-es: a function that takes the next step of a call and
 * returns a step of its own, `(next) => async (request) => { …; return await next(request); }`.
 * The same shape serves both sides: a host's interceptors wrap each call it makes (on top of
 * grpc-js), a plugin's wrap each call it serves (around the method's implementation). The first
 * interceptor of a list is the outermost.
 *
 * @module
 */

/**
 * The four gRPC method kinds, as protobuf-es names them.
 *
 * @example Timing only the unary calls
 * ```ts
 * import type { CallKind } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const streams = (kind: CallKind) => kind !== "unary";
 * assert.equal(streams("bidi_streaming"), true);
 * ```
 */
export type CallKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/**
 * One call, as an interceptor sees it.
 *
 * @example Reading what a call is
 * ```ts
 * import type { CallRequest } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const request: CallRequest = {
 *   path: "/proto.KV/Get",
 *   service: "proto.KV",
 *   method: "Get",
 *   kind: "unary",
 *   message: { key: "a" },
 *   metadata: {},
 * };
 * assert.equal(request.path, `/${request.service}/${request.method}`);
 * ```
 */
export interface CallRequest {
  /** The gRPC path, `/package.Service/Method`. */
  readonly path: string;
  /** The fully qualified service name, e.g. `proto.KV`. */
  readonly service: string;
  /** The method name as in the `.proto` file, e.g. `Get`. */
  readonly method: string;
  /** The method's kind. */
  readonly kind: CallKind;
  /**
   * The request message, or for client and bidi streaming an async iterable of them. An
   * interceptor may replace it.
   */
  message: unknown;
  /** Request metadata (headers), lower-case keys. A host's interceptor may add to it. */
  metadata: Record<string, string>;
  /** Cancels the call (host); aborted when the caller cancels (plugin). */
  signal?: AbortSignal;
  /** Host only: the call's deadline in milliseconds from its start. */
  timeoutMs?: number;
}

/**
 * The outcome of one call, as an interceptor sees it.
 *
 * @example An interceptor that adds a trailer to every answer
 * ```ts
 * import type { CallResponse, Interceptor } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * const served: Interceptor = (next) => async (request) => {
 *   const response: CallResponse = await next(request);
 *   response.trailer["x-served-by"] = "kv-1";
 *   return response;
 * };
 * const step = served(() => Promise.resolve({ message: {}, header: {}, trailer: {} }));
 * const response = await step({ path: "/a.B/C", service: "a.B", method: "C", kind: "unary", message: {}, metadata: {} });
 * assert.equal(response.trailer["x-served-by"], "kv-1");
 * ```
 */
export interface CallResponse {
  /**
   * The response message, or for server and bidi streaming an async iterable of them. An
   * interceptor may replace it.
   */
  message: unknown;
  /**
   * Response headers. On the host they are filled when they arrive (for a streaming response,
   * possibly after the call returned); on the plugin they are sent before the first message.
   */
  header: Record<string, string>;
  /** Response trailers, filled or sent likewise at the end of the call. */
  trailer: Record<string, string>;
}

/**
 * One step of a call: the next interceptor, or the call itself.
 *
 * @example The innermost step of a test
 * ```ts
 * import type { CallHandler } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const echo: CallHandler = (request) =>
 *   Promise.resolve({ message: request.message, header: {}, trailer: {} });
 * const response = await echo({ path: "/e.E/Echo", service: "e.E", method: "Echo", kind: "unary", message: 1, metadata: {} });
 * assert.equal(response.message, 1);
 * ```
 */
export type CallHandler = (request: CallRequest) => Promise<CallResponse>;

/**
 * Wraps every call: given the next step, returns a step of its own that may look at or change
 * the request, the response or the error. connect-es's shape: `(next) => async (req) => …`.
 *
 * @example A host interceptor that adds a request id and counts failures
 * ```ts
 * import { type Interceptor, RpcError, Status } from "@plugwire/plugwire/host";
 * import assert from "node:assert/strict";
 *
 * const failures = new Map<number, number>(); // by status code
 * const tracing: Interceptor = (next) => async (request) => {
 *   request.metadata["x-request-id"] ??= crypto.randomUUID();
 *   try {
 *     return await next(request);
 *   } catch (err) {
 *     const code = RpcError.from(err).code;
 *     failures.set(code, (failures.get(code) ?? 0) + 1);
 *     throw err;
 *   }
 * };
 * // startPlugin({ ..., interceptors: [tracing] })
 * const failing = tracing(() => Promise.reject(new RpcError(Status.UNAVAILABLE, "gone")));
 * await assert.rejects(
 *   failing({ path: "/proto.KV/Get", service: "proto.KV", method: "Get", kind: "unary", message: {}, metadata: {} }),
 *   RpcError,
 * );
 * assert.equal(failures.get(Status.UNAVAILABLE), 1);
 * ```
 */
export type Interceptor = (next: CallHandler) => CallHandler;

/** Wraps `call` in `interceptors`, the first one outermost. */
export function applyInterceptors(
  call: CallHandler,
  interceptors: readonly Interceptor[] | undefined,
): CallHandler {
  if (!interceptors?.length) return call;
  let next = call;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next);
  return next;
}

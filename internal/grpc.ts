/**
 * The bridge between protobuf-es service descriptors and @grpc/grpc-js, shared by both sides:
 * the typed shapes of implementations and clients, a grpc-js service definition from a
 * descriptor, how failures map to {@link RpcError}, and how a call's messages are read.
 * The serving side is in grpc_server.ts, the calling side in grpc_client.ts.
 *
 * @module
 */

import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { metadataRecord, PluginError, RpcError, Status, type StatusCode } from "./errors.ts";
import { Wakeup } from "./queue.ts";
import type {
  GrpcOptions,
  MessageInit,
  RequestOf,
  ResponseOf,
  ServiceDescriptor,
} from "./shapes.ts";

/**
 * A value or a promise of it.
 *
 * @typeParam T The value.
 *
 * @example A method implementation may answer at once or later
 * ```ts
 * import type { MaybePromise } from "@plugwire/plugwire/plugin";
 * import assert from "node:assert/strict";
 *
 * async function twice(step: () => MaybePromise<number>): Promise<number> {
 *   return (await step()) + (await step());
 * }
 * assert.equal(await twice(() => 1), 2);
 * assert.equal(await twice(async () => 2), 4);
 * ```
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What a plugin method receives besides its request.
 *
 * @typeParam B The broker (`GrpcBroker` in a plugin's services).
 *
 * @example Answering by the caller's metadata
 * ```ts
 * import type { CallContext, ServiceImpl } from "@plugwire/plugwire/plugin";
 * import { Greeter, GreetRequestSchema } from "../gen/greeter/greeter_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const greeter: ServiceImpl<typeof Greeter> = {
 *   greet: ({ name }, ctx) => {
 *     ctx.signal.throwIfAborted(); // the caller cancelled or its deadline passed
 *     return { message: `${ctx.metadata["x-lang"] === "fr" ? "bonjour" : "hello"}, ${name}` };
 *   },
 *   count: ({ text }) => ({ letters: text.length, words: text.split(" ").length }),
 * };
 * // Calling the implementation directly, as a unit test would:
 * const ctx: CallContext = {
 *   signal: new AbortController().signal,
 *   metadata: { "x-lang": "fr" },
 *   broker: undefined,
 * };
 * const reply = await greeter.greet(create(GreetRequestSchema, { name: "Ada" }), ctx);
 * assert.deepEqual(reply, { message: "bonjour, Ada" });
 * ```
 */
export interface CallContext<B = unknown> {
  /** Aborted when the caller cancels or the deadline passes. */
  signal: AbortSignal;
  /** The request metadata (headers), lower-case keys. */
  metadata: Record<string, string>;
  /** The broker of this plugin connection, for callbacks to the host. */
  broker: B;
}

/**
 * Options of one call from a client.
 *
 * @example A deadline and request metadata on one call
 * ```ts
 * import type { CallOptions, ServiceClient } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * async function get(kv: ServiceClient<typeof KV>, key: string, signal?: AbortSignal) {
 *   const options: CallOptions = {
 *     timeoutMs: 2000, // then the call fails with Status.DEADLINE_EXCEEDED
 *     metadata: { "x-request-id": crypto.randomUUID() },
 *     signal, // aborting it cancels the call (Status.CANCELLED)
 *   };
 *   return (await kv.get({ key }, options)).value;
 * }
 * ```
 */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
  /** A deadline for the call, in milliseconds from now. */
  timeoutMs?: number;
  /** Request metadata (headers). */
  metadata?: Record<string, string>;
}

/**
 * The implementation of one method on the serving side: for a unary method, a function of the
 * request that returns the response (or a promise of it); for a server-streaming method, an
 * async generator; for client and bidi streaming, the same with an async iterable of requests.
 *
 * @typeParam M The method's descriptor, e.g. `typeof KV.method.get`.
 * @typeParam B The broker (`GrpcBroker` in a plugin's services).
 *
 * @example A server-streaming method
 * ```ts
 * import type { CallContext, MethodImpl } from "@plugwire/plugwire/plugin";
 * import { NumberSchema, Streams } from "../gen/streams/streams_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const count: MethodImpl<typeof Streams.method.count> = async function* ({ value }, ctx) {
 *   for (let i = 0n; i < value && !ctx.signal.aborted; i++) yield { value: i };
 * };
 * const ctx: CallContext = { signal: new AbortController().signal, metadata: {}, broker: null };
 * const replies = await Array.fromAsync(count(create(NumberSchema, { value: 3n }), ctx));
 * assert.deepEqual(replies, [{ value: 0n }, { value: 1n }, { value: 2n }]);
 * ```
 */
export type MethodImpl<M, B = unknown> = M extends { readonly methodKind: "unary" }
  ? (request: RequestOf<M>, ctx: CallContext<B>) => MaybePromise<MessageInit<ResponseOf<M>>>
  : M extends { readonly methodKind: "server_streaming" }
    ? (request: RequestOf<M>, ctx: CallContext<B>) => AsyncIterable<MessageInit<ResponseOf<M>>>
  : M extends { readonly methodKind: "client_streaming" } ? (
      requests: AsyncIterable<RequestOf<M>>,
      ctx: CallContext<B>,
    ) => MaybePromise<MessageInit<ResponseOf<M>>>
  : M extends { readonly methodKind: "bidi_streaming" } ? (
      requests: AsyncIterable<RequestOf<M>>,
      ctx: CallContext<B>,
    ) => AsyncIterable<MessageInit<ResponseOf<M>>>
  : never;

/**
 * The implementation of a service: one function per method, by its camelCase name.
 *
 * @typeParam S The service's descriptor, e.g. `typeof KV`.
 * @typeParam B The broker (`GrpcBroker` in a plugin's services).
 *
 * @example An in-memory KV service, tested without a process
 * ```ts
 * import { grpcPlugin, RpcError, type ServiceImpl, Status } from "@plugwire/plugwire/plugin";
 * import { GetRequestSchema, KV, PutRequestSchema } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const store = new Map<string, Uint8Array>();
 * const kv: ServiceImpl<typeof KV> = {
 *   put: ({ key, value }) => {
 *     store.set(key, value);
 *     return {};
 *   },
 *   get: ({ key }) => {
 *     const value = store.get(key);
 *     if (value === undefined) throw new RpcError(Status.NOT_FOUND, `no such key: ${key}`);
 *     return { value };
 *   },
 * };
 * const plugins = { kv: grpcPlugin(KV, kv) }; // what serve() takes
 *
 * const ctx = { signal: new AbortController().signal, metadata: {}, broker: null };
 * await kv.put(create(PutRequestSchema, { key: "a", value: new Uint8Array([1]) }), ctx);
 * assert.deepEqual(await kv.get(create(GetRequestSchema, { key: "a" }), ctx), {
 *   value: new Uint8Array([1]),
 * });
 * assert.throws(() => kv.get(create(GetRequestSchema, { key: "b" }), ctx), RpcError);
 * ```
 */
export type ServiceImpl<S extends ServiceDescriptor, B = unknown> = {
  [K in keyof S["method"]]: MethodImpl<S["method"][K], B>;
};

/**
 * The client side of one method: for a unary method, an async function of the request; for a
 * server-streaming method, a function returning an async iterable of responses; for client and
 * bidi streaming, the same taking an async iterable of requests.
 *
 * @typeParam M The method's descriptor, e.g. `typeof KV.method.get`.
 *
 * @example Consuming a server stream, with a fake method in a test
 * ```ts
 * import type { MethodClient } from "@plugwire/plugwire/host";
 * import { NumberSchema, Streams } from "../gen/streams/streams_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * // Called as total(plugin.client(Streams).count, 10n).
 * async function total(count: MethodClient<typeof Streams.method.count>, n: bigint) {
 *   let sum = 0n;
 *   for await (const { value } of count({ value: n })) sum += value;
 *   return sum;
 * }
 * const fake: MethodClient<typeof Streams.method.count> = async function* (request) {
 *   for (let i = 0n; i < (request.value ?? 0n); i++) yield create(NumberSchema, { value: i });
 * };
 * assert.equal(await total(fake, 4n), 6n);
 * ```
 */
export type MethodClient<M> = M extends { readonly methodKind: "unary" }
  ? (request: MessageInit<RequestOf<M>>, options?: CallOptions) => Promise<ResponseOf<M>>
  : M extends { readonly methodKind: "server_streaming" }
    ? (request: MessageInit<RequestOf<M>>, options?: CallOptions) => AsyncIterable<ResponseOf<M>>
  : M extends { readonly methodKind: "client_streaming" } ? (
      requests: AsyncIterable<MessageInit<RequestOf<M>>>,
      options?: CallOptions,
    ) => Promise<ResponseOf<M>>
  : M extends { readonly methodKind: "bidi_streaming" } ? (
      requests: AsyncIterable<MessageInit<RequestOf<M>>>,
      options?: CallOptions,
    ) => AsyncIterable<ResponseOf<M>>
  : never;

/**
 * A typed client of a service: one function per method, by its camelCase name. Requests may
 * be plain objects; responses are protobuf-es messages.
 *
 * @typeParam S The service's descriptor, e.g. `typeof KV`.
 *
 * @example Host code tested with a fake client
 * ```ts
 * import type { ServiceClient } from "@plugwire/plugwire/host";
 * import { EmptySchema, GetResponseSchema, KV } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * // In the host: greeting(plugin.dispense("kv")).
 * async function greeting(kv: ServiceClient<typeof KV>): Promise<string> {
 *   return new TextDecoder().decode((await kv.get({ key: "greeting" })).value);
 * }
 * const fake: ServiceClient<typeof KV> = {
 *   get: () => Promise.resolve(create(GetResponseSchema, { value: new Uint8Array([104, 105]) })),
 *   put: () => Promise.resolve(create(EmptySchema)),
 * };
 * assert.equal(await greeting(fake), "hi");
 * ```
 */
export type ServiceClient<S extends ServiceDescriptor> = {
  [K in keyof S["method"]]: MethodClient<S["method"][K]>;
};

/**
 * The largest message either side of a plugwire connection sends or accepts unless told
 * otherwise (`maxMessageBytes`): 256 MiB, both directions, host and plugin alike, brokered
 * connections included. terraform-plugin-go's servers accept the same; go-plugin's host has no
 * limit and grpc-go's server 4 MiB.
 */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 256 * 1024 * 1024;

/**
 * grpc-js options limiting the messages sent and received to `maxBytes` (1 to 2^31 - 1); throws
 * a {@link PluginError} (`misconfigured`) for any other value.
 */
export function messageSizeOptions(maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES): GrpcOptions {
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > 2 ** 31 - 1) {
    throw new PluginError(
      "misconfigured",
      `maxMessageBytes must be a whole number of bytes from 1 to 2^31 - 1, not ${maxBytes}`,
    );
  }
  return {
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
  };
}

/** The gRPC path of a method: `/package.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializer(schema: DescMessage): (value: unknown) => Buffer {
  return (value) => {
    // deno-lint-ignore no-explicit-any
    const bytes = toBinary(schema, create(schema, value as any));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => fromBinary(schema, bytes);
}

const definitions = new WeakMap<DescService, grpc.ServiceDefinition>();

/** A grpc-js service definition for a protobuf-es service descriptor (cached). */
export function serviceDefinition(descriptor: ServiceDescriptor): grpc.ServiceDefinition {
  const service = descriptor as unknown as DescService;
  let def = definitions.get(service);
  if (def) return def;
  const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    methods[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === "client_streaming" ||
        method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" ||
        method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
      originalName: method.name,
    };
  }
  def = methods;
  definitions.set(service, def);
  return def;
}

/** Turns anything thrown by an implementation into the status a caller sees. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof RpcError) {
    const entries = Object.entries(err.metadata);
    if (entries.length === 0) return { code: err.code, details: err.details };
    // The error's metadata travels as the call's trailers.
    const metadata = new Metadata();
    for (const [key, value] of entries) metadata.set(key, value);
    return { code: err.code, details: err.details, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  // grpc-go reports a plain Go error as Unknown; do the same.
  return { code: Status.UNKNOWN, details: message };
}

const LOST_CONNECTION = /RST_STREAM.*(ended by the other party|ECONNRESET|EPIPE)|socket hang up/;

/** Turns a grpc-js failure into an {@link RpcError}. */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === "number") {
    const details = e.details ?? e.message ?? "";
    // grpc-js reports a peer that vanished mid-call (a crashed or killed plugin) as INTERNAL
    // when the socket ends under an open stream; it is the same event as UNAVAILABLE, which is
    // what grpc-go reports and what callers test for.
    const code = e.code === Status.INTERNAL && LOST_CONNECTION.test(details)
      ? Status.UNAVAILABLE
      : e.code as StatusCode;
    return new RpcError(code, details, { cause: err, metadata: metadataRecord(e.metadata) });
  }
  return RpcError.from(err);
}

/** A stream of messages, as grpc-js calls are on both sides. */
interface MessageStream {
  on(event: "data", fn: (message: unknown) => void): unknown;
  on(event: "end", fn: () => void): unknown;
  on(event: "error", fn: (err: unknown) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/**
 * The messages of a call, event-driven. Not `for await` over the stream itself: a Readable's
 * async iterator destroys the stream when it ends, which on a bidirectional call cancels the
 * responses not yet written (and Deno follows Node here).
 */
export async function* messagesOf(stream: MessageStream): AsyncGenerator<unknown, void> {
  const queue: unknown[] = [];
  let done = false;
  let failure: unknown;
  const wakeup = new Wakeup();
  const notify = () => wakeup.wake();
  stream.on("data", (message) => {
    queue.push(message);
    // Backpressure: stop reading while the consumer is behind.
    if (queue.length >= 32) stream.pause();
    notify();
  });
  stream.on("end", () => {
    done = true;
    notify();
  });
  stream.on("error", (err) => {
    failure ??= err;
    done = true;
    notify();
  });
  for (;;) {
    if (queue.length > 0) {
      const message = queue.shift();
      if (queue.length === 8) stream.resume();
      yield message;
      continue;
    }
    if (failure !== undefined) throw toRpcError(failure);
    if (done) return;
    await wakeup.wait();
  }
}

/**
 * The bridge between protobuf-es service descriptors and @grpc/grpc-js: a grpc-js service
 * definition from a descriptor, server handlers from a typed implementation, and a typed client
 * whose calls read like local method calls. Both sides map failures into {@link RpcError}.
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
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { RpcError, Status, type StatusCode } from "./errors.ts";
import type { MessageInit, RequestOf, ResponseOf, ServiceDescriptor } from "./shapes.ts";

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
  if (err instanceof RpcError) return { code: err.code, details: err.details };
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
    return new RpcError(code, details, { cause: err });
  }
  return new RpcError(Status.UNKNOWN, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

function metadataRecord(metadata: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata.getMap())) out[k] = String(v);
  return out;
}

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * The context of one call. Its signal and metadata record are made on first use: most unary
 * implementations never look at them, and an AbortController, a listener and a metadata copy
 * per call are a measurable part of a small call's cost.
 */
function contextOf<B>(call: AnyCall, broker: B): CallContext<B> {
  let abort: AbortController | undefined;
  let metadata: Record<string, string> | undefined;
  return {
    get signal() {
      if (!abort) {
        const controller = abort = new AbortController();
        const cancel = () => controller.abort(new RpcError(Status.CANCELLED, "call cancelled"));
        // grpc-js sets `cancelled` before it emits "cancelled".
        if ((call as { cancelled?: boolean }).cancelled) cancel();
        else (call as { on(event: "cancelled", fn: () => void): void }).on("cancelled", cancel);
      }
      return abort.signal;
    },
    get metadata() {
      return metadata ??= metadataRecord(call.metadata);
    },
    broker,
  };
}

async function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  messages: AsyncIterable<unknown>,
  signal: AbortSignal,
): Promise<void> {
  for await (const message of messages) {
    if (signal.aborted) return;
    if (!call.write(message)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          call.off("drain", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        call.on("drain", done);
        signal.addEventListener("abort", done);
      });
    }
  }
}

/**
 * grpc-js handlers for a typed implementation. `broker` is handed to every call's context.
 */
export function serviceHandlers<B>(
  descriptor: ServiceDescriptor,
  impl: Record<string, unknown>,
  broker: B,
): grpc.UntypedServiceImplementation {
  const service = descriptor as unknown as DescService;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const fn = impl[method.localName] as ((...args: unknown[]) => unknown) | undefined;
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot serve ${service.typeName}: no implementation of ${method.localName}()`,
      );
    }
    switch (method.methodKind) {
      case "unary":
        handlers[method.localName] = (
          call: grpc.ServerUnaryCall<unknown, unknown>,
          callback: grpc.sendUnaryData<unknown>,
        ) => {
          // Called directly, not from a microtask: a synchronous implementation answers
          // without a promise round trip.
          let result: unknown;
          try {
            result = fn.call(impl, call.request, contextOf(call, broker));
          } catch (err) {
            callback(toServiceError(err));
            return;
          }
          if (isThenable(result)) {
            result.then((res) => callback(null, res), (err) => callback(toServiceError(err)));
          } else {
            callback(null, result);
          }
        };
        break;
      case "server_streaming":
        handlers[method.localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const ctx = contextOf(call, broker);
          Promise.resolve()
            .then(() =>
              writeAll(call, fn.call(impl, call.request, ctx) as AsyncIterable<unknown>, ctx.signal)
            )
            .then(() => call.end(), (err) => call.destroy(toServiceError(err) as Error));
        };
        break;
      case "client_streaming":
        handlers[method.localName] = (
          call: grpc.ServerReadableStream<unknown, unknown>,
          callback: grpc.sendUnaryData<unknown>,
        ) => {
          const ctx = contextOf(call, broker);
          Promise.resolve()
            .then(() => fn.call(impl, messagesOf(call), ctx))
            .then((res) => callback(null, res), (err) => callback(toServiceError(err)));
        };
        break;
      case "bidi_streaming":
        handlers[method.localName] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const ctx = contextOf(call, broker);
          Promise.resolve()
            .then(() =>
              writeAll(
                call,
                fn.call(impl, messagesOf(call), ctx) as AsyncIterable<unknown>,
                ctx.signal,
              )
            )
            .then(() => call.end(), (err) => call.destroy(toServiceError(err) as Error));
        };
        break;
    }
  }
  return handlers;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
}

/** An error shaped like grpc-js's ServiceError, from a status. */
function statusError(status: grpc.StatusObject): grpc.ServiceError {
  const name = (grpc.status as unknown as Record<number, string | undefined>)[status.code];
  return Object.assign(new Error(`${status.code} ${name ?? "UNKNOWN"}: ${status.details}`), {
    code: status.code,
    details: status.details,
    metadata: status.metadata,
  });
}

/**
 * One unary call straight on the channel: what `Client.makeUnaryRequest` does without its
 * per-call interceptor chain, event emitter and captured stack trace (`new Error()` on every
 * call, for errors that plugwire rewraps anyway). plugwire's clients have no interceptors.
 */
function unaryCall(
  client: grpc.Client,
  path: string,
  serialize: (value: unknown) => Buffer,
  deserialize: (bytes: Buffer) => unknown,
  request: unknown,
  options: CallOptions | undefined,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const deadline = options?.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const call = client.getChannel().createCall(path, deadline, undefined, null, undefined);
    let response: unknown;
    let received = false;
    let failure: grpc.StatusObject | undefined;
    let unlink = () => {};
    call.start(metadataOf(options), {
      onReceiveMetadata() {},
      onReceiveMessage(message: Buffer) {
        if (received) {
          call.cancelWithStatus(Status.UNIMPLEMENTED, "Too many responses received");
          return;
        }
        try {
          response = deserialize(message);
          received = true;
        } catch (err) {
          failure = {
            code: Status.INTERNAL,
            details: `Response message parsing error: ${(err as Error)?.message ?? err}`,
            metadata: new grpc.Metadata(),
          };
          call.cancelWithStatus(failure.code, failure.details);
        }
      },
      onReceiveStatus(status: grpc.StatusObject) {
        unlink();
        if (failure) reject(toRpcError(statusError(failure)));
        else if (status.code !== Status.OK) reject(toRpcError(statusError(status)));
        else if (!received) {
          reject(toRpcError(statusError({
            code: Status.UNIMPLEMENTED,
            details: "No message received",
            metadata: status.metadata,
          })));
        } else resolve(response);
      },
    });
    unlink = linkAbort(
      { cancel: () => call.cancelWithStatus(Status.CANCELLED, "Cancelled on client") },
      options?.signal,
    );
    call.startRead();
    let bytes: Buffer;
    try {
      bytes = serialize(request);
    } catch (err) {
      call.cancelWithStatus(
        Status.INTERNAL,
        `Request message serialization failure: ${(err as Error)?.message ?? err}`,
      );
      return;
    }
    call.sendMessageWithContext({}, bytes);
    call.halfClose();
  });
}

function callOptions(options: CallOptions | undefined): grpc.CallOptions {
  return options?.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
}

function metadataOf(options: CallOptions | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(options?.metadata ?? {})) md.set(k, v);
  return md;
}

function linkAbort(call: { cancel(): void }, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  const onAbort = () => call.cancel();
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
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
async function* messagesOf(stream: MessageStream): AsyncGenerator<unknown, void> {
  const queue: unknown[] = [];
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
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
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

/** Reads a client call's responses; cancels the call if the reader stops early. */
async function* readAll(
  stream: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
  unlink: () => void,
): AsyncGenerator<unknown> {
  let finished = false;
  try {
    yield* messagesOf(stream);
    finished = true;
  } finally {
    unlink();
    if (!finished) stream.cancel();
  }
}

async function pump(
  requests: AsyncIterable<unknown>,
  call: grpc.ClientWritableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
): Promise<void> {
  try {
    for await (const request of requests) {
      if (!call.write(request)) await new Promise((resolve) => call.once("drain", resolve));
    }
    call.end();
  } catch (err) {
    call.cancel();
    throw err;
  }
}

/** A typed client for `service` over a grpc-js client (whose channel may be shared). */
export function createServiceClient<S extends ServiceDescriptor>(
  descriptor: S,
  client: grpc.Client,
): ServiceClient<S> {
  const service = descriptor as unknown as DescService;
  const def = serviceDefinition(descriptor);
  const out: Record<string, unknown> = {};
  for (const method of service.methods) {
    const d = def[method.localName];
    const path = d.path;
    const ser = d.requestSerialize;
    const de = d.responseDeserialize;
    switch (method.methodKind) {
      case "unary":
        out[method.localName] = (request: unknown, options?: CallOptions) =>
          unaryCall(client, path, ser, de, request, options);
        break;
      case "server_streaming":
        out[method.localName] = (request: unknown, options?: CallOptions) => {
          const call = client.makeServerStreamRequest(
            path,
            ser,
            de,
            request,
            metadataOf(options),
            callOptions(options),
          );
          return readAll(call, linkAbort(call, options?.signal));
        };
        break;
      case "client_streaming":
        out[method.localName] = (requests: AsyncIterable<unknown>, options?: CallOptions) =>
          new Promise((resolve, reject) => {
            const call = client.makeClientStreamRequest(
              path,
              ser,
              de,
              metadataOf(options),
              callOptions(options),
              (err, res) => {
                unlink();
                if (err) reject(toRpcError(err));
                else resolve(res);
              },
            );
            const unlink = linkAbort(call, options?.signal);
            pump(requests, call).catch(reject);
          });
        break;
      case "bidi_streaming":
        out[method.localName] = (requests: AsyncIterable<unknown>, options?: CallOptions) => {
          const call = client.makeBidiStreamRequest(
            path,
            ser,
            de,
            metadataOf(options),
            callOptions(options),
          );
          pump(requests, call).catch(() => {});
          return readAll(call, linkAbort(call, options?.signal));
        };
        break;
    }
  }
  return out as ServiceClient<S>;
}

/**
 * A grpc-js service definition (what `@grpc/proto-loader` and grpc-tools produce): besides
 * the fields below, each method carries the serializers grpc-js calls.
 *
 * @example A hand-written definition with JSON messages
 * ```ts
 * import type { GrpcJsServiceDefinition, GrpcPlugin } from "@plugwire/plugwire/plugin";
 * import { Buffer } from "node:buffer";
 *
 * const json = {
 *   requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
 *   requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
 *   responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
 *   responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
 * };
 * const echoService = {
 *   echo: { path: "/echo.Echo/Echo", requestStream: false, responseStream: false, ...json },
 * };
 * const definition: GrpcJsServiceDefinition = echoService;
 * const echo: GrpcPlugin = {
 *   register: (registrar) =>
 *     registrar.addGrpcJs(definition, {
 *       echo: (call: { request: unknown }, done: (err: null, reply: unknown) => void) =>
 *         done(null, call.request),
 *     }),
 * };
 * ```
 */
export type GrpcJsServiceDefinition = Record<string, {
  /** `/package.Service/Method`. */
  path: string;
  /** Whether the client streams. */
  requestStream: boolean;
  /** Whether the server streams. */
  responseStream: boolean;
}>;

/**
 * grpc-js handlers by method name.
 *
 * @example Handlers of a unary and a server-streaming method
 * ```ts
 * import type { GrpcJsHandlers } from "@plugwire/plugwire/plugin";
 *
 * type Unary = { request: { name: string } };
 * type Stream = { request: { n: number }; write(reply: unknown): void; end(): void };
 * const handlers: GrpcJsHandlers = {
 *   // registrar.addGrpcJs(definition, handlers), with the definition of these two methods.
 *   hello: (call: Unary, done: (err: null, reply: { text: string }) => void) =>
 *     done(null, { text: `hello, ${call.request.name}` }),
 *   count: (call: Stream) => {
 *     for (let i = 0; i < call.request.n; i++) call.write({ i });
 *     call.end();
 *   },
 * };
 * ```
 */
export type GrpcJsHandlers = Record<string, (...args: never[]) => unknown>;

/**
 * Registers services on a gRPC server. Plugin sets and broker callbacks receive one, so the
 * same code serves a plugin's main services and its brokered ones.
 *
 * @typeParam B The broker handed to each call (`GrpcBroker` in a plugin).
 *
 * @example One function for a plugin's services and the broker's
 * ```ts
 * import type { GrpcPlugin, ServiceRegistrar } from "@plugwire/plugwire/plugin";
 * import { Greeter } from "../gen/greeter/greeter_pb.ts";
 * import assert from "node:assert/strict";
 *
 * function addGreeter(registrar: ServiceRegistrar): void {
 *   registrar.add(Greeter, {
 *     greet: ({ name }) => ({ message: `hello, ${name}` }),
 *     count: ({ text }) => ({ letters: text.length, words: text.split(" ").length }),
 *   });
 * }
 * const plugin: GrpcPlugin = { register: addGreeter }; // served by serve()
 * // ...or on a brokered server: const id = await ctx.broker.serve(addGreeter);
 *
 * // A registrar that only records, as a unit test might use:
 * const added: string[] = [];
 * plugin.register({ add: (service) => void added.push(service.typeName), addGrpcJs() {} });
 * assert.deepEqual(added, ["greeter.Greeter"]);
 * ```
 */
export interface ServiceRegistrar<B = unknown> {
  /** Serves a protobuf-es service with a typed implementation. */
  add<S extends ServiceDescriptor>(service: S, impl: ServiceImpl<S, B>): void;
  /**
   * Serves a grpc-js service definition as is, for code generated by other tools
   * (`@grpc/proto-loader`, grpc-tools, ts-proto).
   */
  addGrpcJs(definition: GrpcJsServiceDefinition, handlers: GrpcJsHandlers): void;
}

/**
 * A registrar that adds to `server`, handing `broker` to every call; `onAdd` learns of each
 * service (for reflection).
 */
export function registrarFor<B>(
  server: grpc.Server,
  broker: B,
  onAdd: (name: string, descriptor?: ServiceDescriptor) => void = () => {},
): ServiceRegistrar<B> {
  return {
    add(service, impl) {
      server.addService(
        serviceDefinition(service),
        serviceHandlers(service, impl as Record<string, unknown>, broker),
      );
      onAdd(service.typeName, service);
    },
    addGrpcJs(definition, handlers) {
      server.addService(
        definition as unknown as grpc.ServiceDefinition,
        handlers as unknown as grpc.UntypedServiceImplementation,
      );
      const first = Object.values(definition)[0];
      if (first) onAdd(first.path.split("/")[1]);
    },
  };
}

/**
 * The serving side of the grpc-js bridge: grpc-js handlers from a typed implementation, and the
 * registrar that plugin sets and broker callbacks add their services through.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { setImmediate } from "node:timers";
import {
  type CallContext,
  messagesOf,
  methodPath,
  serviceDefinition,
  type ServiceImpl,
  toServiceError,
} from "./grpc.ts";
import { RpcError, Status } from "./errors.ts";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  applyInterceptors,
  type CallKind,
  type CallResponse,
  type Interceptor,
} from "./interceptors.ts";
import type { ServiceDescriptor } from "./shapes.ts";

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
 * How a service implementation is served.
 *
 * @example Refusing to start with a method missing
 * ```ts
 * import { grpcPlugin, type ServiceImplOptions } from "@plugwire/plugwire/plugin";
 * import { connectInProcess } from "@plugwire/plugwire/testing";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const options: ServiceImplOptions = { strict: true };
 * const kv = grpcPlugin(KV, { get: () => ({ value: new Uint8Array() }) }, options);
 * // Serving it throws before anything listens: put() is missing.
 * await assert.rejects(
 *   connectInProcess({ serve: { plugins: { kv } }, host: { plugins: { kv: KV } } }),
 *   /no implementation of put\(\)/,
 * );
 * ```
 */
export interface ServiceImplOptions {
  /**
   * Refuse an implementation that lacks a method of the service: registering it throws a
   * `TypeError`, so the plugin fails before its handshake. Without it, a missing method answers
   * `UNIMPLEMENTED`, as grpc-go's generated servers do.
   * @default {false}
   */
  strict?: boolean;
}

/** What every handler of a server shares besides the broker. */
export interface HandlerSettings extends ServiceImplOptions {
  /** Wrap each call, the first outermost. */
  interceptors?: readonly Interceptor[];
}

/**
 * grpc-js handlers for a typed implementation. `broker` is handed to every call's context.
 * A method missing from `impl` answers UNIMPLEMENTED, unless `settings.strict` is set.
 */
export function serviceHandlers<B>(
  descriptor: ServiceDescriptor,
  impl: Record<string, unknown>,
  broker: B,
  settings: HandlerSettings = {},
): grpc.UntypedServiceImplementation {
  const service = descriptor as unknown as DescService;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    let fn = impl[method.localName] as ((...args: unknown[]) => unknown) | undefined;
    if (typeof fn !== "function") {
      if (settings.strict || fn !== undefined) {
        throw new TypeError(
          `Cannot serve ${service.typeName}: no implementation of ${method.localName}()`,
        );
      }
      if (!settings.interceptors?.length) {
        handlers[method.localName] = unimplemented(method.name, method.methodKind);
        continue;
      }
      // Interceptors see these calls too, as grpc-go's do.
      fn = () => {
        throw new RpcError(Status.UNIMPLEMENTED, `method ${method.name} not implemented`);
      };
    }
    if (settings.interceptors?.length) {
      handlers[method.localName] = intercepted(method, fn, impl, broker, settings.interceptors);
      continue;
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
            .then(() => call.end(), (err) => call.emit("error", toServiceError(err)));
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
            .then(() => call.end(), (err) => call.emit("error", toServiceError(err)));
        };
        break;
    }
  }
  return handlers;
}

/** What grpc-go's generated `Unimplemented…Server` answers for a method left out. */
function unimplemented(name: string, kind: CallKind): grpc.UntypedHandleCall {
  const error = { code: Status.UNIMPLEMENTED, details: `method ${name} not implemented` };
  if (kind === "unary" || kind === "client_streaming") {
    return (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(error);
  }
  // As grpc-js's own default handler does: an "error" event ends the stream with that status.
  return (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit("error", error);
}

function metadataOf(record: Record<string, string>): grpc.Metadata | undefined {
  const entries = Object.entries(record);
  if (entries.length === 0) return undefined;
  const md = new Metadata();
  for (const [key, value] of entries) md.set(key, value);
  return md;
}

/** A handler that runs the call through `interceptors` before the implementation. */
function intercepted<B>(
  method: DescMethod,
  fn: (...args: unknown[]) => unknown,
  impl: Record<string, unknown>,
  broker: B,
  interceptors: readonly Interceptor[],
): grpc.UntypedHandleCall {
  const kind = method.methodKind;
  const streamsRequests = kind === "client_streaming" || kind === "bidi_streaming";
  const streamsResponses = kind === "server_streaming" || kind === "bidi_streaming";
  const run = (call: AnyCall): Promise<CallResponse> => {
    const ctx = contextOf(call, broker);
    const chain = applyInterceptors(async (request) => {
      const result = fn.call(impl, request.message, {
        signal: ctx.signal,
        metadata: request.metadata,
        broker,
      });
      return {
        message: streamsResponses ? result : await result,
        header: {},
        trailer: {},
      };
    }, interceptors);
    return chain({
      path: methodPath(method),
      service: method.parent.typeName,
      method: method.name,
      kind,
      message: streamsRequests
        ? messagesOf(call as grpc.ServerReadableStream<unknown, unknown>)
        : (call as grpc.ServerUnaryCall<unknown, unknown>).request,
      metadata: { ...ctx.metadata },
      signal: ctx.signal,
    });
  };
  const sendHeader = (call: AnyCall, response: CallResponse) => {
    const header = metadataOf(response.header);
    if (header) call.sendMetadata(header);
  };
  if (!streamsResponses) {
    return (call: AnyCall, callback: grpc.sendUnaryData<unknown>) => {
      run(call).then((response) => {
        sendHeader(call, response);
        callback(null, response.message, metadataOf(response.trailer));
      }, (err) => callback(toServiceError(err)));
    };
  }
  return (call: grpc.ServerWritableStream<unknown, unknown>) => {
    run(call).then(async (response) => {
      sendHeader(call, response);
      await writeAll(
        call,
        response.message as AsyncIterable<unknown>,
        contextOf(call, broker).signal,
      );
      call.end(metadataOf(response.trailer));
    }).catch((err) => call.emit("error", toServiceError(err)));
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
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
 * // ...or on a brokered server: const { id } = await ctx.broker.serve(addGreeter);
 *
 * // A registrar that only records, as a unit test might use:
 * const added: string[] = [];
 * plugin.register({ add: (service) => void added.push(service.typeName), addGrpcJs() {} });
 * assert.deepEqual(added, ["greeter.Greeter"]);
 * ```
 */
export interface ServiceRegistrar<B = unknown> {
  /**
   * Serves a protobuf-es service with a typed implementation. Methods left out answer
   * `UNIMPLEMENTED`, unless `options.strict` makes a missing method a `TypeError` here.
   */
  add<S extends ServiceDescriptor>(
    service: S,
    impl: Partial<ServiceImpl<S, B>>,
    options?: ServiceImplOptions,
  ): void;
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
  settings: HandlerSettings = {},
): ServiceRegistrar<B> {
  return {
    add(service, impl, options) {
      server.addService(
        serviceDefinition(service),
        serviceHandlers(service, impl as Record<string, unknown>, broker, {
          ...settings,
          ...options,
        }),
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

/** A socket as far as knowing whether it still has bytes to write goes. */
interface WritingSocket {
  readonly writableLength?: number;
}

/** Where a call's response travels: the server's sockets, and whether TLS runs over them. */
export interface ResponsePath {
  /** The sockets of the server's connections (the raw ones, under TLS if any). */
  sockets?: Iterable<WritingSocket>;
  /** The connections are TLS. */
  tls?: boolean;
}

/**
 * Resolves once the response of a grpc-js server call has left this process, so that its
 * socket can be destroyed at once, which is how a plugwire plugin ends its connections (no
 * GOAWAY, hangup.ts; grpclib, python-plugin's host, fails every call still in flight when a
 * GOAWAY arrives, even one whose response it already has). First its HTTP/2 stream closes
 * (nghttp2 reports that after the last frame was handed to the socket). Then, on plaintext
 * connections, every socket has written what it held to the kernel, which delivers it after
 * the socket closes. Under TLS the raw socket can be empty while the TLS layer still holds the
 * response (a python-plugin host over TCP lost the reply every time), so with TLS a PING on the
 * same connection must come back: a peer answers it only after the frames before it. The
 * peer closing the connection resolves it too. grpc-js does not expose the stream, so this
 * follows its call objects (`call.call`, then `nextCall` through interceptors) to the one
 * holding it; when that chain is not there, it resolves once the sockets are flushed.
 */
export async function responseDelivered(
  call: object,
  { sockets = [], tls = false }: ResponsePath = {},
): Promise<void> {
  type Stream = {
    closed?: boolean;
    session?: {
      once?(event: "close", fn: () => void): void;
      ping?(callback: (err: Error | null) => void): boolean;
    };
    once(event: "close", fn: () => void): void;
  };
  let link = (call as { call?: unknown }).call as
    | { stream?: Stream; nextCall?: unknown }
    | undefined;
  let stream: Stream | undefined;
  for (let depth = 0; link && depth < 8 && !stream; depth++) {
    if (link.stream && typeof link.stream.once === "function") stream = link.stream;
    link = link.nextCall as typeof link;
  }
  // The stream lets go of its session when it closes: hold on to it first.
  const session = stream?.session;
  let peerClosed = false;
  const closed = new Promise<void>((resolve) =>
    session?.once?.("close", () => {
      peerClosed = true;
      resolve();
    })
  );
  if (stream && !stream.closed) {
    await new Promise<void>((resolve) => stream.once("close", resolve));
  }
  if (session && tls) {
    const acked = new Promise<void>((resolve) => {
      try {
        if (!session.ping?.(() => resolve())) resolve();
      } catch {
        resolve(); // The session is already closing: nothing more to wait for.
      }
    });
    await Promise.race([acked, closed]);
    return;
  }
  // Socket writes complete asynchronously (one event loop turn or a few): check once a turn.
  const pending = () => [...sockets].some((socket) => (socket.writableLength ?? 0) > 0);
  while (!peerClosed && pending()) await new Promise((resolve) => setImmediate(resolve));
}

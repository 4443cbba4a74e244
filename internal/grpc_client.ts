/**
 * The calling side of the grpc-js bridge: a typed client whose calls read like local method
 * calls, on a grpc-js client whose channel may be shared.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import { metadataRecord, RpcError, Status } from "./errors.ts";
import {
  type CallOptions,
  messagesOf,
  type ServiceClient,
  serviceDefinition,
  toRpcError,
} from "./grpc.ts";
import type { ServiceDescriptor } from "./shapes.ts";
import { applyInterceptors, type CallResponse, type Interceptor } from "./interceptors.ts";

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
 * call, for errors that plugwire rewraps anyway). plugwire's own interceptors (interceptors.ts)
 * wrap this from the outside.
 */
function unaryCall(
  client: grpc.Client,
  path: string,
  serialize: (value: unknown) => Buffer,
  deserialize: (bytes: Buffer) => unknown,
  request: unknown,
  options: CallOptions | undefined,
  closed: ClosedError,
  meta?: { header: Record<string, string>; trailer: Record<string, string> },
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const deadline = options?.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let call: ReturnType<grpc.Channel["createCall"]>;
    try {
      call = client.getChannel().createCall(path, deadline, undefined, null, undefined);
    } catch (cause) {
      // The channel closed under us (see `start`).
      const err = closed();
      reject(new RpcError(err.code, err.details, { cause }));
      return;
    }
    let response: unknown;
    let received = false;
    let failure: grpc.StatusObject | undefined;
    let headers: grpc.Metadata | undefined;
    let unlink = () => {};
    call.start(metadataOf(options), {
      onReceiveMetadata(metadata: grpc.Metadata) {
        headers = metadata;
        if (meta) Object.assign(meta.header, metadataRecord(metadata));
      },
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
        if (meta) Object.assign(meta.trailer, metadataRecord(status.metadata));
        if (failure) reject(withHeaders(toRpcError(statusError(failure)), headers));
        else if (status.code !== Status.OK) {
          reject(withHeaders(toRpcError(statusError(status)), headers));
        } else if (!received) {
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

/** Adds the response headers to a failed call's error; its trailers win on a clash. */
function withHeaders(err: RpcError, headers: grpc.Metadata | undefined): RpcError {
  if (headers) {
    for (const [key, value] of Object.entries(metadataRecord(headers))) {
      if (!(key in err.metadata)) err.metadata[key] = value;
    }
  }
  return err;
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

/**
 * What a call on a closed channel fails with: the owner of the channel knows why it closed
 * (a local close is CANCELLED, a peer that went away UNAVAILABLE).
 */
export type ClosedError = () => RpcError;

const closedChannel: ClosedError = () =>
  new RpcError(Status.UNAVAILABLE, "the connection to the plugin is closed");

/**
 * Starts a call, or returns the error it must fail with: grpc-js throws a plain `Error`
 * ("Channel has been shut down") from every call on a closed channel, and callers are
 * promised an {@link RpcError}.
 */
function startCall<T>(client: grpc.Client, closed: ClosedError, begin: () => T): T | RpcError {
  const channel = client.getChannel();
  if (channel.getConnectivityState(false) === grpc.connectivityState.SHUTDOWN) return closed();
  try {
    return begin();
  } catch (cause) {
    if (channel.getConnectivityState(false) !== grpc.connectivityState.SHUTDOWN) throw cause;
    const err = closed();
    return new RpcError(err.code, err.details, { cause });
  }
}

/** An async iterable that fails with `err` when read. */
function failing(err: RpcError): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

/** What every call of a client gets unless the call says otherwise. */
export interface ClientSettings {
  /** Wrap each call, the first outermost. */
  interceptors?: readonly Interceptor[];
  /** The deadline of a call that gives no `timeoutMs` of its own. */
  timeoutMs?: number;
  /** The error of a call made once the channel is closed (UNAVAILABLE unless said otherwise). */
  closed?: ClosedError;
}

/** Where a call's response headers and trailers go as they arrive. */
type Received = { header: Record<string, string>; trailer: Record<string, string> };

function recordInto(
  call: { on(event: "metadata", fn: (md: grpc.Metadata) => void): unknown } & {
    on(event: "status", fn: (status: grpc.StatusObject) => void): unknown;
  },
  into: Received | undefined,
): void {
  if (!into) return;
  call.on("metadata", (md) => Object.assign(into.header, metadataRecord(md)));
  call.on("status", (status) => Object.assign(into.trailer, metadataRecord(status.metadata)));
}

/** A typed client for `service` over a grpc-js client (whose channel may be shared). */
export function createServiceClient<S extends ServiceDescriptor>(
  descriptor: S,
  client: grpc.Client,
  settings: ClientSettings = {},
): ServiceClient<S> {
  const service = descriptor as unknown as DescService;
  const def = serviceDefinition(descriptor);
  const out: Record<string, unknown> = {};
  const defaultTimeoutMs = settings.timeoutMs;
  const closed = settings.closed ?? closedChannel;
  const withDefaults = (options: CallOptions | undefined): CallOptions | undefined =>
    defaultTimeoutMs === undefined || options?.timeoutMs !== undefined
      ? options
      : { ...options, timeoutMs: defaultTimeoutMs };
  for (const method of service.methods) {
    const d = def[method.localName];
    const path = d.path;
    const ser = d.requestSerialize;
    const de = d.responseDeserialize;
    // The call itself: a promise (unary, client streaming) or an async iterable (the others).
    let invoke: (message: unknown, options: CallOptions | undefined, into?: Received) => unknown;
    switch (method.methodKind) {
      case "unary":
        invoke = (request, options, into) => {
          const call = startCall(
            client,
            closed,
            () => unaryCall(client, path, ser, de, request, options, closed, into),
          );
          return call instanceof RpcError ? Promise.reject(call) : call;
        };
        break;
      case "server_streaming":
        invoke = (request, options, into) => {
          const call = startCall(client, closed, () =>
            client.makeServerStreamRequest(
              path,
              ser,
              de,
              request,
              metadataOf(options),
              callOptions(options),
            ));
          if (call instanceof RpcError) return failing(call);
          recordInto(call, into);
          return readAll(call, linkAbort(call, options?.signal));
        };
        break;
      case "client_streaming":
        invoke = (requests, options, into) =>
          new Promise((resolve, reject) => {
            let unlink = () => {};
            const call = startCall(client, closed, () =>
              client.makeClientStreamRequest(
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
              ));
            if (call instanceof RpcError) return reject(call);
            recordInto(call, into);
            unlink = linkAbort(call, options?.signal);
            pump(requests as AsyncIterable<unknown>, call).catch(reject);
          });
        break;
      case "bidi_streaming":
        invoke = (requests, options, into) => {
          const call = startCall(client, closed, () =>
            client.makeBidiStreamRequest(
              path,
              ser,
              de,
              metadataOf(options),
              callOptions(options),
            ));
          if (call instanceof RpcError) return failing(call);
          recordInto(call, into);
          pump(requests as AsyncIterable<unknown>, call).catch(() => {});
          return readAll(call, linkAbort(call, options?.signal));
        };
        break;
    }
    if (!settings.interceptors?.length) {
      out[method.localName] = (message: unknown, options?: CallOptions) =>
        invoke(message, withDefaults(options));
      continue;
    }
    const streamsResponses = method.methodKind === "server_streaming" ||
      method.methodKind === "bidi_streaming";
    const chain = applyInterceptors(async (request) => {
      const response: CallResponse = { message: undefined, header: {}, trailer: {} };
      const options = {
        signal: request.signal,
        timeoutMs: request.timeoutMs,
        metadata: request.metadata,
      };
      const result = invoke(request.message, options, response);
      response.message = streamsResponses ? result : await result;
      return response;
    }, settings.interceptors);
    const start = (message: unknown, options: CallOptions | undefined) =>
      chain({
        path,
        service: service.typeName,
        method: method.name,
        kind: method.methodKind,
        message,
        metadata: { ...options?.metadata },
        signal: options?.signal,
        timeoutMs: withDefaults(options)?.timeoutMs,
      });
    out[method.localName] = streamsResponses
      ? (message: unknown, options?: CallOptions) =>
        (async function* () {
          yield* (await start(message, options)).message as AsyncIterable<unknown>;
        })()
      : async (message: unknown, options?: CallOptions) => (await start(message, options)).message;
  }
  return out as ServiceClient<S>;
}

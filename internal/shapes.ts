/**
 * The types plugwire's public signatures are written in: structural descriptions of what
 * protobuf-es generates, so that a typed client or implementation is derived from a generated
 * service without plugwire's API exposing protobuf-es's own type names.
 *
 * @module
 */

/**
 * The four kinds of RPC.
 *
 * @example The kind of each method of a service
 * ```ts
 * import type { MethodKind } from "@plugwire/plugwire/host";
 * import { Streams } from "../gen/streams/streams_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const kinds: MethodKind[] = Object.values(Streams.method).map((method) => method.methodKind);
 * assert.deepEqual(kinds, ["unary", "server_streaming", "client_streaming", "bidi_streaming"]);
 * ```
 */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/**
 * A protobuf service descriptor, as protobuf-es generates it (`export const KV: GenService<…>`).
 *
 * @example A generated service is one
 * ```ts
 * import type { ServiceDescriptor } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const service: ServiceDescriptor = KV;
 * assert.equal(service.typeName, "proto.KV");
 * assert.deepEqual(Object.keys(service.method), ["get", "put"]);
 * ```
 */
export interface ServiceDescriptor {
  /** Always "service". */
  readonly kind: "service";
  /** The fully qualified name, e.g. `proto.KV`. */
  readonly typeName: string;
  /** The methods by their camelCase name. */
  readonly method: Readonly<Record<string, MethodDescriptor>>;
}

/**
 * One method of a {@link ServiceDescriptor}.
 *
 * @example Listing the streaming methods of a service
 * ```ts
 * import type { MethodDescriptor, ServiceDescriptor } from "@plugwire/plugwire/host";
 * import { Streams } from "../gen/streams/streams_pb.ts";
 * import assert from "node:assert/strict";
 *
 * function streaming(service: ServiceDescriptor): string[] {
 *   const methods: [string, MethodDescriptor][] = Object.entries(service.method);
 *   return methods.filter(([, method]) => method.methodKind !== "unary").map(([name]) => name);
 * }
 * assert.deepEqual(streaming(Streams), ["count", "sum", "double"]);
 * ```
 */
export interface MethodDescriptor {
  /** The kind of RPC. */
  readonly methodKind: MethodKind;
  /** The request message's descriptor. */
  readonly input: unknown;
  /** The response message's descriptor. */
  readonly output: unknown;
}

/**
 * The message type a generated message descriptor describes.
 *
 * @typeParam D The message descriptor, e.g. `typeof GetRequestSchema`.
 *
 * @example
 * ```ts
 * import type { MessageOf } from "@plugwire/plugwire/host";
 * import { GetRequestSchema } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 *
 * type GetRequest = MessageOf<typeof GetRequestSchema>; // the generated GetRequest
 * const request: GetRequest = create(GetRequestSchema, { key: "a" });
 * ```
 */
export type MessageOf<D> = D extends { readonly $codegenv2: { a: infer S } } ? S
  : Record<string, unknown>;

/**
 * Field values that are taken as they are.
 *
 * @example
 * ```ts
 * import type { Scalar } from "@plugwire/plugwire/host";
 *
 * // Each of these is a field value in a message init, not a nested message.
 * const values: Scalar[] = [1, "a", true, 1n << 40n, new Uint8Array([1]), new Date(0)];
 * ```
 */
export type Scalar = Date | Uint8Array | bigint | boolean | string | number;
/**
 * Any protobuf-es message.
 *
 * @example
 * ```ts
 * import type { AnyMessage } from "@plugwire/plugwire/host";
 * import { GetRequestSchema } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const typeName = (message: AnyMessage) => message.$typeName;
 * assert.equal(typeName(create(GetRequestSchema, { key: "a" })), "proto.GetRequest");
 * ```
 */
export type AnyMessage = { readonly $typeName: string };

/**
 * What may be passed where a message is expected: the message itself, or a plain object with
 * any of its fields (nested messages likewise), as protobuf-es's `create()` accepts.
 *
 * @typeParam T The message type.
 *
 * @example A plain object where a request is expected
 * ```ts
 * import type { MessageInit } from "@plugwire/plugwire/host";
 * import { type PutRequest, PutRequestSchema } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const init: MessageInit<PutRequest> = { key: "a" }; // await kv.put(init)
 * assert.deepEqual(create(PutRequestSchema, init).value, new Uint8Array()); // missing: default
 * ```
 */
export type MessageInit<T> =
  | T
  | { [P in keyof T as P extends "$unknown" | "$typeName" ? never : P]?: FieldInit<T[P]> };

/**
 * The init form of one field: scalars as they are, messages as {@link MessageInit}.
 *
 * @typeParam F The field's type.
 *
 * @example
 * ```ts
 * import type { FieldInit } from "@plugwire/plugwire/host";
 * import type { PutRequest } from "../gen/kv/kv_pb.ts";
 *
 * const value: FieldInit<PutRequest["value"]> = new TextEncoder().encode("1");
 * ```
 */
export type FieldInit<F> = F extends Scalar ? F
  : F extends Array<infer U> ? Array<FieldInit<U>>
  : F extends ReadonlyArray<infer U> ? ReadonlyArray<FieldInit<U>>
  : F extends AnyMessage ? MessageInit<F>
  : F extends { case: infer C extends string; value: infer V extends AnyMessage }
    ? { case: C; value: MessageInit<V> }
  : F extends { [key: string | number]: infer V extends AnyMessage }
    ? { [key: string | number]: MessageInit<V> }
  : F;

/**
 * The request message type of a method.
 *
 * @typeParam M The method's descriptor, e.g. `typeof KV.method.get`.
 *
 * @example
 * ```ts
 * import type { RequestOf } from "@plugwire/plugwire/plugin";
 * import { GetRequestSchema, KV } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const cacheKey = (request: RequestOf<typeof KV.method.get>) => `kv:${request.key}`;
 * assert.equal(cacheKey(create(GetRequestSchema, { key: "a" })), "kv:a");
 * ```
 */
export type RequestOf<M> = M extends { readonly input: infer I } ? MessageOf<I> : never;

/**
 * The response message type of a method.
 *
 * @typeParam M The method's descriptor, e.g. `typeof KV.method.get`.
 *
 * @example
 * ```ts
 * import type { ResponseOf } from "@plugwire/plugwire/host";
 * import { GetResponseSchema, KV } from "../gen/kv/kv_pb.ts";
 * import { create } from "@bufbuild/protobuf";
 * import assert from "node:assert/strict";
 *
 * const text = (response: ResponseOf<typeof KV.method.get>) =>
 *   new TextDecoder().decode(response.value);
 * assert.equal(text(create(GetResponseSchema, { value: new Uint8Array([104, 105]) })), "hi");
 * ```
 */
export type ResponseOf<M> = M extends { readonly output: infer O } ? MessageOf<O> : never;

/**
 * gRPC channel or server arguments, passed to grpc-js as they are
 * (e.g. `{ "grpc.max_receive_message_length": 16 << 20 }`).
 *
 * @example Raising the message size limit on the host's channel
 * ```ts
 * import type { GrpcOptions, StartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * const limits: GrpcOptions = { "grpc.max_send_message_length": 64 << 20 };
 * const options: StartOptions = {
 *   cmd: ["./kv-plugin"],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   grpcChannelOptions: limits, // the plugin's side: grpcServerOptions of serve()
 * };
 * ```
 */
export type GrpcOptions = Record<string, string | number>;

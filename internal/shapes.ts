/**
 * The types plugwire's public signatures are written in: structural descriptions of what
 * protobuf-es generates, so that a typed client or implementation is derived from a generated
 * service without plugwire's API exposing protobuf-es's own type names.
 *
 * @module
 */

/** The four kinds of RPC. */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/**
 * A protobuf service descriptor, as protobuf-es generates it (`export const KV: GenService<…>`).
 *
 * @example
 * ```ts ignore
 * import { KV } from "./gen/kv/kv_pb.ts";
 * const service: ServiceDescriptor = KV;
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

/** One method of a {@link ServiceDescriptor}. */
export interface MethodDescriptor {
  /** The kind of RPC. */
  readonly methodKind: MethodKind;
  /** The request message's descriptor. */
  readonly input: unknown;
  /** The response message's descriptor. */
  readonly output: unknown;
}

/** The message type a generated message descriptor describes. */
export type MessageOf<D> = D extends { readonly $codegenv2: { a: infer S } } ? S
  : Record<string, unknown>;

/** Field values that are taken as they are. */
export type Scalar = Date | Uint8Array | bigint | boolean | string | number;
/** Any protobuf-es message. */
export type AnyMessage = { readonly $typeName: string };

/**
 * What may be passed where a message is expected: the message itself, or a plain object with
 * any of its fields (nested messages likewise), as protobuf-es's `create()` accepts.
 */
export type MessageInit<T> =
  | T
  | { [P in keyof T as P extends "$unknown" | "$typeName" ? never : P]?: FieldInit<T[P]> };

/** The init form of one field. */
export type FieldInit<F> = F extends Scalar ? F
  : F extends Array<infer U> ? Array<FieldInit<U>>
  : F extends ReadonlyArray<infer U> ? ReadonlyArray<FieldInit<U>>
  : F extends AnyMessage ? MessageInit<F>
  : F extends { case: infer C extends string; value: infer V extends AnyMessage }
    ? { case: C; value: MessageInit<V> }
  : F extends { [key: string | number]: infer V extends AnyMessage }
    ? { [key: string | number]: MessageInit<V> }
  : F;

/** The request message type of a method. */
export type RequestOf<M> = M extends { readonly input: infer I } ? MessageOf<I> : never;

/** The response message type of a method. */
export type ResponseOf<M> = M extends { readonly output: infer O } ? MessageOf<O> : never;

/**
 * gRPC channel or server arguments, passed to grpc-js as they are
 * (e.g. `{ "grpc.max_receive_message_length": 16 << 20 }`).
 */
export type GrpcOptions = Record<string, string | number>;

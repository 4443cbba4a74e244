/**
 * Calling a plugin without its .proto files: the services and methods come from the plugin's
 * own gRPC reflection service (v1, else v1alpha), the messages are transcoded from and to the
 * canonical protobuf JSON mapping, and the calls go through the host's typed clients
 * (`plugin.client(descService)`), so TLS, deadlines, cancellation and {@link RpcError}s behave
 * exactly as for generated code. The gateway and the `plugwire` command are built on it.
 *
 * ```ts ignore
 * const plugin = await startPlugin({ cmd, handshake, plugins: {} });
 * const services = await loadServices(plugin, { signal });
 * services.list();        // [{ service: "proto.KV", internal: false, methods: [...] }, ...]
 * await services.callUnary("proto.KV/Get", { key: "a" });           // { value: "aGk=" }
 * for await (const reply of services.callServerStream("pkg.Svc/Watch", {})) console.log(reply);
 * ```
 *
 * Failures are typed: a {@link DynamicError} (`not-found` for an unknown service or method,
 * `invalid-json` naming the offending field, `unsupported-method` for a method of another kind,
 * `reflection-unavailable` when the plugin serves no reflection) or the call's own
 * {@link RpcError}. Each carries the gRPC status a caller should see (`status`).
 *
 * @module
 */

import {
  create,
  createFileRegistry,
  type DescMethod,
  type DescService,
  type FileRegistry,
  fromBinary,
  fromJson,
  type JsonValue,
  type Message,
  toJson,
} from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import {
  type DescriptorProto,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { ServerReflection as ReflectionV1 } from "../gen/core/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ReflectionV1alpha } from "../gen/core/grpc/reflection/v1alpha/reflection_pb.ts";
import { RpcError, Status, type StatusCode } from "./errors.ts";
import { type CallOptions, type ServiceClient, toRpcError } from "./grpc.ts";
import { AsyncQueue } from "./queue.ts";
import type { ServiceDescriptor } from "./shapes.ts";

/** What {@link loadServices} needs of a plugin: a typed client for a service descriptor. */
export interface ClientSource {
  /** A typed client for any service of the plugin (`PluginClient.client`). */
  client<S extends ServiceDescriptor>(service: S): ServiceClient<S>;
}

/** The four kinds of gRPC method. */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** One method as reflection describes it. */
export interface DynamicMethod {
  /** The method's name as in the .proto file, e.g. `Get`. */
  readonly name: string;
  /** `package.Service/Method`, the name {@link DynamicServices.method} takes. */
  readonly path: string;
  /** The fully qualified service name, e.g. `proto.KV`. */
  readonly service: string;
  /** The kind of RPC. */
  readonly kind: MethodKind;
  /** The fully qualified request message name. */
  readonly input: string;
  /** The fully qualified response message name. */
  readonly output: string;
  /** The protobuf-es descriptor, for callers that build messages themselves. */
  readonly desc: DescMethod;
}

/** One service the plugin lists. */
export interface DynamicService {
  /** The fully qualified name, e.g. `proto.KV`. */
  readonly service: string;
  /**
   * True for the services go-plugin's protocol itself adds (health, reflection, broker,
   * controller, stdio): a gateway should not expose them.
   */
  readonly internal: boolean;
  /** Its methods, in declaration order (empty when its descriptor could not be loaded). */
  readonly methods: readonly DynamicMethod[];
  /** Why the methods are unknown, when reflection listed the service but gave no descriptor. */
  readonly error?: string;
}

/** Why a dynamic call could not be made. */
export type DynamicErrorCode =
  | "not-found"
  | "invalid-json"
  | "unsupported-method"
  | "reflection-unavailable";

/**
 * A failure of the reflection/JSON layer itself (the call's own failures are {@link RpcError}s).
 * `status` is the gRPC status that describes it best, for a gateway to answer with.
 */
export class DynamicError extends Error {
  /** What went wrong. */
  readonly code: DynamicErrorCode;
  /** The gRPC status a caller should see (NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED, ...). */
  readonly status: StatusCode;
  /** With `invalid-json`: the offending field's name (or JSON key), when known. */
  readonly field?: string;

  /**
   * Creates an error.
   *
   * @param code What went wrong.
   * @param message Says what and what to do.
   * @param options The underlying error and the offending field.
   */
  constructor(
    code: DynamicErrorCode,
    message: string,
    options: { cause?: unknown; field?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "DynamicError";
    this.code = code;
    this.field = options.field;
    this.status = code === "not-found"
      ? Status.NOT_FOUND
      : code === "invalid-json"
      ? Status.INVALID_ARGUMENT
      : Status.UNIMPLEMENTED;
  }
}

/** Options of {@link loadServices}. */
export interface LoadOptions {
  /** Aborts the loading. */
  signal?: AbortSignal;
  /** A deadline for the whole reflection exchange, in ms. @default {10000} */
  timeoutMs?: number;
  /**
   * Write fields that have their default value (`0`, `""`, `false`) in JSON replies, as a
   * REST client expects, rather than omitting them as the canonical mapping does.
   * @default {false}
   */
  emitDefaults?: boolean;
  /** Ignore JSON keys the request message lacks instead of failing. @default {false} */
  ignoreUnknownFields?: boolean;
}

/** The services of go-plugin's protocol (docs/protocol.md §6). */
const INTERNAL_SERVICES = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "plugin.GRPCBroker",
  "plugin.GRPCController",
  "plugin.GRPCStdio",
]);

/** Files a plugin may import without serving them through reflection. */
const WELL_KNOWN_FILES = new Map(
  [
    file_google_protobuf_any,
    file_google_protobuf_api,
    file_google_protobuf_descriptor,
    file_google_protobuf_duration,
    file_google_protobuf_empty,
    file_google_protobuf_field_mask,
    file_google_protobuf_source_context,
    file_google_protobuf_struct,
    file_google_protobuf_timestamp,
    file_google_protobuf_type,
    file_google_protobuf_wrappers,
  ].map((file) => [file.proto.name, file.proto]),
);

/** The reflection answer shapes of v1 and v1alpha (identical). */
type ReflectionAnswer =
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
  | { case: string | undefined; value?: unknown };

type ReflectionQuestion =
  | { case: "listServices"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileByFilename"; value: string };

/** One reflection stream, asked one question at a time (answers come in order). */
class ReflectionStream {
  readonly #requests = new AsyncQueue<{ messageRequest: ReflectionQuestion }>();
  readonly #responses: AsyncIterator<{ messageResponse: ReflectionAnswer }>;

  constructor(source: ClientSource, version: "v1" | "v1alpha", signal: AbortSignal) {
    // Both versions have the same shapes; the v1 client type stands for either.
    const service = (version === "v1" ? ReflectionV1 : ReflectionV1alpha) as typeof ReflectionV1;
    const responses = source.client(service).serverReflectionInfo(this.#requests, { signal });
    this.#responses = responses[Symbol.asyncIterator]() as AsyncIterator<
      { messageResponse: ReflectionAnswer }
    >;
  }

  async ask(question: ReflectionQuestion): Promise<ReflectionAnswer> {
    this.#requests.push({ messageRequest: question });
    const next = await this.#responses.next();
    if (next.done) {
      throw new RpcError(Status.UNAVAILABLE, "the reflection stream ended early");
    }
    return next.value.messageResponse;
  }

  async close(): Promise<void> {
    this.#requests.end();
    // Reading to the end lets the call finish cleanly instead of being cancelled.
    try {
      while (!(await this.#responses.next()).done) { /* drain */ }
    } catch {
      // The call ended with an error after our last question: nothing left to learn.
    }
  }
}

/**
 * Loads a plugin's services through its reflection service: lists them, fetches the file
 * descriptors that define them (and their imports), and builds a protobuf-es registry.
 *
 * @param plugin A started plugin (`PluginClient`) or any {@link ClientSource}.
 * @param options Cancellation, a deadline, JSON options.
 * @returns The services, ready to be called with JSON.
 * @throws {DynamicError} `reflection-unavailable` when the plugin serves neither version.
 * @throws {RpcError} When the plugin fails otherwise (it exited, the deadline passed, ...).
 */
export async function loadServices(
  plugin: ClientSource,
  options: LoadOptions = {},
): Promise<DynamicServices> {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new RpcError(Status.DEADLINE_EXCEEDED, "reflection took too long")),
    options.timeoutMs ?? 10_000,
  );
  const signal = options.signal
    ? AbortSignal.any([options.signal, deadline.signal])
    : deadline.signal;
  try {
    let lastError: unknown;
    for (const version of ["v1", "v1alpha"] as const) {
      const stream = new ReflectionStream(plugin, version, signal);
      let names: string[];
      try {
        const answer = await stream.ask({ case: "listServices", value: "" });
        if (answer.case !== "listServicesResponse") {
          throw new RpcError(Status.INTERNAL, `listServices answered ${answer.case}`);
        }
        names = (answer.value as { service: { name: string }[] }).service.map((s) => s.name);
      } catch (err) {
        await stream.close();
        const rpc = toRpcError(err);
        if (rpc.code !== Status.UNIMPLEMENTED) throw rpc;
        lastError = rpc;
        continue;
      }
      try {
        return await fetchDescriptors(plugin, stream, names, version, options);
      } finally {
        await stream.close();
      }
    }
    throw new DynamicError(
      "reflection-unavailable",
      "the plugin serves no gRPC reflection (neither grpc.reflection.v1 nor v1alpha): " +
        "its methods cannot be listed or called without its .proto files",
      { cause: lastError },
    );
  } catch (err) {
    if (deadline.signal.aborted && !(err instanceof DynamicError)) throw deadline.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function fetchDescriptors(
  plugin: ClientSource,
  stream: ReflectionStream,
  names: string[],
  version: "v1" | "v1alpha",
  options: LoadOptions,
): Promise<DynamicServices> {
  const files = new Map<string, FileDescriptorProto>();
  const errors = new Map<string, string>();
  const take = (answer: ReflectionAnswer): string | undefined => {
    if (answer.case === "fileDescriptorResponse") {
      for (
        const bytes of (answer.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto
      ) {
        const proto = fromBinary(FileDescriptorProtoSchema, bytes);
        proto.messageType.forEach(restoreJsonNames);
        if (!files.has(proto.name)) files.set(proto.name, proto);
      }
      return undefined;
    }
    if (answer.case === "errorResponse") {
      const e = answer.value as { errorCode: number; errorMessage: string };
      return `reflection error ${e.errorCode}: ${e.errorMessage}`;
    }
    return `unexpected reflection answer ${answer.case}`;
  };
  for (const name of names) {
    const problem = take(await stream.ask({ case: "fileContainingSymbol", value: name }));
    if (problem) errors.set(name, problem);
  }
  // A server may leave out imports it sent before on the stream, or not serve them at all:
  // ask by file name, then fall back to protobuf-es's copies of the well-known types.
  for (let missing = missingImports(files); missing.length; missing = missingImports(files)) {
    for (const name of missing) {
      const problem = take(await stream.ask({ case: "fileByFilename", value: name }));
      if (files.has(name)) continue;
      const known = WELL_KNOWN_FILES.get(name);
      if (known) files.set(name, known);
      else {
        // Without the import nothing that depends on it can be built: drop the dependants.
        for (const [fileName, file] of [...files]) {
          if (file.dependency.includes(name)) files.delete(fileName);
        }
        for (const service of names) {
          if (!errors.has(service)) {
            errors.set(service, `import ${name} unavailable (${problem ?? "not served"})`);
          }
        }
      }
    }
  }
  let registry: FileRegistry;
  try {
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
  } catch (cause) {
    throw new DynamicError(
      "reflection-unavailable",
      `the plugin's reflection descriptors do not form a valid set: ${(cause as Error).message}`,
      { cause },
    );
  }
  const services: DynamicService[] = names.map((name) => {
    const desc = registry.getService(name);
    const internal = INTERNAL_SERVICES.has(name);
    if (!desc) {
      return {
        service: name,
        internal,
        methods: [],
        error: errors.get(name) ?? "no descriptor for this service",
      };
    }
    return { service: name, internal, methods: desc.methods.map(describeMethod) };
  });
  return new DynamicServices(plugin, registry, services, version, options);
}

function describeMethod(desc: DescMethod): DynamicMethod {
  return {
    name: desc.name,
    path: `${desc.parent.typeName}/${desc.name}`,
    service: desc.parent.typeName,
    kind: desc.methodKind,
    input: desc.input.typeName,
    output: desc.output.typeName,
    desc,
  };
}

/**
 * Fills in the JSON names a descriptor leaves out. protoc writes them only into what it hands
 * its plugins, so descriptors compiled into Python code (python-plugin's) have none, and
 * protobuf-es would then read and write every field under the key "".
 */
function restoreJsonNames(message: DescriptorProto): void {
  for (const field of message.field) field.jsonName ||= protoCamelCase(field.name);
  message.nestedType.forEach(restoreJsonNames);
}

/** The files in an order createFileRegistry accepts: each after the files it imports. */
function importsFirst(files: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const out: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (file: FileDescriptorProto) => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    for (const dep of file.dependency) {
      const imported = files.get(dep);
      if (imported) visit(imported);
    }
    out.push(file);
  };
  files.forEach(visit);
  return out;
}

function missingImports(files: Map<string, FileDescriptorProto>): string[] {
  const missing = new Set<string>();
  for (const file of files.values()) {
    for (const dep of file.dependency) if (!files.has(dep)) missing.add(dep);
  }
  return [...missing];
}

/**
 * A plugin's services as loaded by {@link loadServices}: list them, look a method up, call it
 * with JSON.
 */
export class DynamicServices {
  /** The registry of every message, enum and service the plugin described. */
  readonly registry: FileRegistry;
  /** The reflection version the plugin answered. */
  readonly reflectionVersion: "v1" | "v1alpha";
  readonly #source: ClientSource;
  readonly #services: readonly DynamicService[];
  readonly #methods = new Map<string, DynamicMethod>();
  readonly #clients = new Map<string, Record<string, unknown>>();
  readonly #options: LoadOptions;

  /** @internal Use {@link loadServices}. */
  constructor(
    source: ClientSource,
    registry: FileRegistry,
    services: readonly DynamicService[],
    reflectionVersion: "v1" | "v1alpha",
    options: LoadOptions,
  ) {
    this.#source = source;
    this.registry = registry;
    this.#services = services;
    this.reflectionVersion = reflectionVersion;
    this.#options = options;
    for (const service of services) {
      for (const method of service.methods) this.#methods.set(method.path, method);
    }
  }

  /** Every service the plugin lists, in its order, internal ones included (see `internal`). */
  list(): readonly DynamicService[] {
    return this.#services;
  }

  /**
   * A method by name: `package.Service/Method` (also `/package.Service/Method` and
   * `package.Service.Method`).
   *
   * @throws {DynamicError} `not-found`, naming the services that exist.
   */
  method(name: string): DynamicMethod {
    let key = name.startsWith("/") ? name.slice(1) : name;
    if (!key.includes("/")) {
      const dot = key.lastIndexOf(".");
      if (dot > 0) key = `${key.slice(0, dot)}/${key.slice(dot + 1)}`;
    }
    const found = this.#methods.get(key);
    if (found) return found;
    const service = key.split("/")[0];
    const known = this.#services.find((s) => s.service === service);
    if (known) {
      throw new DynamicError(
        "not-found",
        known.error
          ? `service ${service} has no descriptor (${known.error})`
          : `service ${service} has no method ${JSON.stringify(key.split("/")[1] ?? "")}; ` +
            `its methods: ${known.methods.map((m) => m.name).join(", ")}`,
      );
    }
    throw new DynamicError(
      "not-found",
      `no service ${JSON.stringify(service)} on this plugin; name a method as ` +
        `package.Service/Method, one of the services: ` +
        this.#services.filter((s) => !s.internal).map((s) => s.service).join(", "),
    );
  }

  /**
   * Builds a method's request message from JSON (the canonical protobuf JSON mapping).
   *
   * @throws {DynamicError} `invalid-json` naming the field protobuf-es rejected.
   */
  requestFromJson(method: string | DynamicMethod, json: JsonValue): Message {
    const m = typeof method === "string" ? this.method(method) : method;
    try {
      return fromJson(m.desc.input, json, {
        registry: this.registry,
        ignoreUnknownFields: this.#options.ignoreUnknownFields ?? false,
      });
    } catch (cause) {
      const message = (cause as Error).message;
      const fieldError = (cause as Error).cause as { field?: () => { name?: string } } | undefined;
      const field = typeof fieldError?.field === "function"
        ? fieldError.field().name
        : /key "([^"]*)" is unknown/.exec(message)?.[1];
      throw new DynamicError(
        "invalid-json",
        `the request is not a valid ${m.input} in JSON: ${message}`,
        { cause, field },
      );
    }
  }

  /** A reply message in JSON. */
  replyToJson(method: DynamicMethod, reply: Message): JsonValue {
    return toJson(method.desc.output, reply, {
      registry: this.registry,
      alwaysEmitImplicit: this.#options.emitDefaults ?? false,
    });
  }

  /**
   * Calls a unary method with a JSON request and returns the JSON reply.
   *
   * @throws {DynamicError} For an unknown method, bad JSON, or a method that is not unary.
   * @throws {RpcError} When the call fails.
   */
  async callUnary(
    method: string | DynamicMethod,
    json: JsonValue,
    options: CallOptions = {},
  ): Promise<JsonValue> {
    const m = this.#ofKind(method, "unary");
    const request = this.requestFromJson(m, json);
    const call = this.#call(m) as (r: Message, o: CallOptions) => Promise<Message>;
    return this.replyToJson(m, await call(request, options));
  }

  /**
   * Calls a server-streaming method with a JSON request; yields each reply as JSON. Stopping
   * the iteration early cancels the call.
   *
   * @throws {DynamicError} For an unknown method, bad JSON (both before the first reply), or a
   *   method that is not server-streaming.
   * @throws {RpcError} When the call fails.
   */
  callServerStream(
    method: string | DynamicMethod,
    json: JsonValue,
    options: CallOptions = {},
  ): AsyncIterable<JsonValue> {
    // Checked eagerly, so a bad request throws here rather than at the first `next()`.
    const m = this.#ofKind(method, "server_streaming");
    const request = this.requestFromJson(m, json);
    const call = this.#call(m) as (r: Message, o: CallOptions) => AsyncIterable<Message>;
    const replies = call(request, options);
    const toJsonReply = (reply: Message) => this.replyToJson(m, reply);
    return (async function* () {
      for await (const reply of replies) yield toJsonReply(reply);
    })();
  }

  #ofKind(method: string | DynamicMethod, kind: MethodKind): DynamicMethod {
    const m = typeof method === "string" ? this.method(method) : method;
    if (m.kind !== kind) {
      throw new DynamicError(
        "unsupported-method",
        `${m.path} is a ${m.kind.replace("_", "-")} method; ` +
          (m.kind === "unary"
            ? "call it as a unary method"
            : m.kind === "server_streaming"
            ? "call it as a server stream"
            : "only unary and server-streaming methods can be called with JSON"),
      );
    }
    return m;
  }

  #call(method: DynamicMethod): unknown {
    let client = this.#clients.get(method.service);
    if (!client) {
      const service = method.desc.parent as DescService;
      client = this.#source.client(service as unknown as ServiceDescriptor) as Record<
        string,
        unknown
      >;
      this.#clients.set(method.service, client);
    }
    return (client[method.desc.localName] as (...args: unknown[]) => unknown).bind(client);
  }
}

/**
 * gRPC server reflection, v1 and v1alpha, as go-plugin plugins serve it (docs/protocol.md §6.2): it
 * lists the server's services and returns the descriptors of the files that define them, so
 * tools like grpcurl can call a plugin without its .proto files.
 *
 * @module
 */

import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflection as ReflectionV1 } from "../gen/core/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ReflectionV1alpha } from "../gen/core/grpc/reflection/v1alpha/reflection_pb.ts";
import { Status } from "./errors.ts";
import type { ServiceImpl } from "./grpc.ts";
import type { ServiceRegistrar } from "./grpc_server.ts";
import type { ServiceDescriptor } from "./shapes.ts";

/** The two reflection services, in go-plugin's registration order. */
export const REFLECTION_SERVICES: readonly ServiceDescriptor[] = [ReflectionV1, ReflectionV1alpha];

/** What the reflection service knows: every service on the server, by name and descriptor. */
export class ReflectionRegistry {
  readonly #names: string[] = [];
  readonly #files = new Map<string, DescFile>();
  readonly #symbols = new Map<string, DescFile>();

  /** Records a service (and, with a descriptor, the files that define it). */
  add(name: string, descriptor?: ServiceDescriptor): void {
    this.#names.push(name);
    if (descriptor) this.#addFile((descriptor as unknown as DescService).file);
  }

  /** The service names, in registration order. */
  get names(): readonly string[] {
    return this.#names;
  }

  #addFile(file: DescFile): void {
    const name = file.proto.name;
    if (this.#files.has(name)) return;
    this.#files.set(name, file);
    for (const service of file.services) {
      this.#symbols.set(service.typeName, file);
      for (const method of service.methods) {
        this.#symbols.set(`${service.typeName}.${method.name}`, file);
      }
    }
    const addMessages = (messages: DescFile["messages"]) => {
      for (const message of messages) {
        this.#symbols.set(message.typeName, file);
        for (const e of message.nestedEnums) this.#symbols.set(e.typeName, file);
        addMessages(message.nestedMessages);
      }
    };
    addMessages(file.messages);
    for (const e of file.enums) this.#symbols.set(e.typeName, file);
    for (const dep of file.dependencies) this.#addFile(dep);
  }

  /** The descriptor bytes of a file and everything it imports, the file first. */
  #fileWithDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      f.dependencies.forEach(visit);
    };
    visit(file);
    return out;
  }

  /** Answers one reflection request (the message shapes of v1 and v1alpha are the same). */
  answer(request: ReflectionRequest): ReflectionAnswer {
    const req = request.messageRequest;
    const notFound = (what: string): ReflectionAnswer => ({
      case: "errorResponse",
      value: { errorCode: Status.NOT_FOUND, errorMessage: `${what} not found` },
    });
    switch (req.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.#names.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const file = this.#files.get(req.value);
        return file
          ? {
            case: "fileDescriptorResponse",
            value: { fileDescriptorProto: this.#fileWithDependencies(file) },
          }
          : notFound(`file ${req.value}`);
      }
      case "fileContainingSymbol": {
        const file = this.#symbols.get(req.value);
        return file
          ? {
            case: "fileDescriptorResponse",
            value: { fileDescriptorProto: this.#fileWithDependencies(file) },
          }
          : notFound(`symbol ${req.value}`);
      }
      case "fileContainingExtension":
        return notFound("extension");
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: req.value, extensionNumber: [] },
        };
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Status.INVALID_ARGUMENT, errorMessage: "empty request" },
        };
    }
  }

  /** Registers both reflection services on a server. */
  register(registrar: ServiceRegistrar<unknown>): void {
    // deno-lint-ignore no-this-alias
    const registry = this;
    const impl = {
      async *serverReflectionInfo(requests: AsyncIterable<ReflectionRequest>) {
        for await (const request of requests) {
          yield {
            validHost: request.host,
            originalRequest: request,
            messageResponse: registry.answer(request),
          };
        }
      },
    };
    registrar.add(ReflectionV1, impl as unknown as ServiceImpl<typeof ReflectionV1>);
    registrar.add(ReflectionV1alpha, impl as unknown as ServiceImpl<typeof ReflectionV1alpha>);
  }
}

/** The request, as both versions shape it. */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | {
      case:
        | "fileByFilename"
        | "fileContainingSymbol"
        | "allExtensionNumbersOfType"
        | "listServices";
      value: string;
    }
    | { case: "fileContainingExtension"; value: unknown }
    | { case: undefined; value?: undefined };
}

type ReflectionAnswer =
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
    case: "allExtensionNumbersResponse";
    value: { baseTypeName: string; extensionNumber: number[] };
  }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

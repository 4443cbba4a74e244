/**
 * `plugwire.bench.Bench`: one bidirectional method, `Echo`, streaming
 * `google.protobuf.BytesValue` both ways, for the streaming-throughput figure. It is built at
 * run time from a FileDescriptorProto (no .proto file, no codegen); the Go side registers the
 * same method by hand (tests/interop/go/cmd/gobench), so both speak it without generated stubs.
 *
 * @module
 */

import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  type BytesValueSchema,
  file_google_protobuf_wrappers,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

const file = create(FileDescriptorProtoSchema, {
  name: "plugwire/bench.proto",
  package: "plugwire.bench",
  dependency: ["google/protobuf/wrappers.proto"],
  syntax: "proto3",
  service: [{
    name: "Bench",
    method: [{
      name: "Echo",
      inputType: ".google.protobuf.BytesValue",
      outputType: ".google.protobuf.BytesValue",
      clientStreaming: true,
      serverStreaming: true,
    }],
  }],
});

const registry = createFileRegistry(
  file,
  (name) => name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined,
);

/** The Bench service: `echo` answers every BytesValue with itself. */
export const Bench = registry.getService("plugwire.bench.Bench") as unknown as GenService<{
  echo: {
    methodKind: "bidi_streaming";
    input: typeof BytesValueSchema;
    output: typeof BytesValueSchema;
  };
}>;

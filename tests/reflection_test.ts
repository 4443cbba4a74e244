import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { startPlugin } from "../host.ts";
import { ServerReflection as V1 } from "../gen/core/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as V1alpha } from "../gen/core/grpc/reflection/v1alpha/reflection_pb.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { helperPlugin, testNoLeftovers } from "./_util.ts";

async function* one<T>(request: T) {
  yield request;
}

for (const [version, service] of [["v1", V1], ["v1alpha", V1alpha]] as const) {
  Deno.test(`reflection ${version}: lists go-plugin's services and the plugin's own`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("serve"),
      plugins: { reflection: service, kv: KV },
    });
    const reflection = plugin.dispense("reflection");
    const names: string[] = [];
    for await (
      const { messageResponse } of reflection.serverReflectionInfo(
        one({ messageRequest: { case: "listServices", value: "*" } }),
      )
    ) {
      assert.equal(messageResponse.case, "listServicesResponse");
      names.push(...messageResponse.value!.service.map((s: { name: string }) => s.name));
    }
    // go-plugin's TestGRPC_Reflection list, with the helper plugin's three app services.
    assert.deepEqual(names, [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "proto.KV",
      "grpctest.Test",
      "streams.Streams",
      "plugin.GRPCBroker",
      "plugin.GRPCController",
      "plugin.GRPCStdio",
    ]);
  });
}

Deno.test("reflection: returns the file that defines a symbol, with its imports", async () => {
  await using plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { reflection: V1 } });
  const reflection = plugin.dispense("reflection");
  for (
    const [symbol, file] of [["proto.KV", "kv.proto"], [
      "grpctest.Test.PrintStdio",
      "grpctest.proto",
    ], ["grpc.health.v1.HealthCheckRequest", "grpc/health/v1/health.proto"]]
  ) {
    for await (
      const { messageResponse } of reflection.serverReflectionInfo(
        one({ messageRequest: { case: "fileContainingSymbol", value: symbol } }),
      )
    ) {
      assert.equal(messageResponse.case, "fileDescriptorResponse", symbol);
      const files = messageResponse.value!.fileDescriptorProto.map((b: Uint8Array) =>
        fromBinary(FileDescriptorProtoSchema, b).name
      );
      assert.equal(files[0], file);
      if (file === "grpctest.proto") assert.ok(files.includes("google/protobuf/empty.proto"));
    }
  }
  for await (
    const { messageResponse } of reflection.serverReflectionInfo(
      one({ messageRequest: { case: "fileContainingSymbol", value: "no.such.Thing" } }),
    )
  ) {
    assert.equal(messageResponse.case, "errorResponse");
    assert.equal(messageResponse.value!.errorCode, 5);
  }
});

testNoLeftovers();

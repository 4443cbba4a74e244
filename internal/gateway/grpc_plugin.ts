/**
 * Subprocess plugins: any go-plugin plugin (plugwire, Go, Python), started with plugwire's own
 * host and called through its reflection service (internal/dynamic.ts), so the gateway needs
 * no `.proto` file.
 *
 * @module
 */

import { fromBinary, fromJson, type JsonValue, toBinary, toJson } from "@bufbuild/protobuf";
import { startPlugin } from "../start.ts";
import { Status } from "../errors.ts";
import { type DynamicServices, loadServices } from "../dynamic.ts";
import type { PluginLogRecord } from "../logger.ts";
import type { GrpcPluginSection } from "./config.ts";
import type { Instance } from "./slot.ts";
import { connectErrorResponse, errorBodyOf, errorResponseOf, isServerError } from "./connect.ts";

/** A running subprocess plugin and its methods. */
export interface GrpcInstance extends Instance {
  readonly services: DynamicServices;
}

/** Starts the plugin, loads its services through reflection, and watches its process. */
export async function startGrpcPlugin(
  section: GrpcPluginSection,
  log: (line: string) => void,
  extraEnv: Record<string, string> = {},
): Promise<GrpcInstance> {
  const client = await startPlugin({
    cmd: section.cmd,
    handshake: section.handshake,
    // The gateway knows no service in advance: any version it accepts has an empty set.
    versionedPlugins: Object.fromEntries(section.versions.map((v) => [v, {}])),
    autoMtls: section.autoMtls,
    env: { ...section.env, ...extraEnv },
    cwd: section.cwd,
    name: section.id,
    stdin: "null",
    logger: (record) => log(formatRecord(record)),
    syncStdout: (line) => log(`[stdout] ${textOf(line)}`),
    syncStderr: (line) => log(`[stderr] ${textOf(line)}`),
  });
  let services: DynamicServices;
  try {
    services = await loadServices(client, { timeoutMs: 10_000 });
  } catch (err) {
    await client.kill();
    throw err;
  }
  const methods = services.list().filter((s) => !s.internal).flatMap((s) =>
    s.methods.map((m) => m.path)
  );
  let stopping = false;
  return {
    pid: client.pid,
    version: client.protocolVersion,
    tls: section.autoMtls,
    methods,
    services,
    died: client.exited.then((status) =>
      stopping
        ? "stopped"
        : `pid ${client.pid} exited (${
          status.signal ? `signal ${status.signal}` : `code ${status.code}`
        })`
    ),
    async stop() {
      stopping = true;
      await client.kill(); // Shutdown over gRPC, then SIGTERM, then SIGKILL
    },
  };
}

function formatRecord(record: PluginLogRecord): string {
  const fields = Object.entries(record.fields)
    .filter(([k]) => !k.startsWith("@"))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const module = record.module ? `${record.module}: ` : "";
  return `[${record.level}] ${module}${record.message}${fields ? ` ${fields}` : ""}`;
}

function textOf(data: unknown): string {
  return (typeof data === "string" ? data : new TextDecoder().decode(data as Uint8Array))
    .replace(/\n$/, "");
}

/** A gRPC request body: JSON, or Connect's binary (protobuf bytes). */
export type GrpcBody = { json: JsonValue; bytes?: undefined } | {
  json?: undefined;
  bytes: Uint8Array;
};

/**
 * Reads the body of `POST /plugins/<id>/<Service>/<Method>`: `application/json` (empty = `{}`)
 * or `application/proto`; anything else is answered 415, invalid JSON 400.
 */
export async function readGrpcBody(request: Request): Promise<GrpcBody | Response> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/proto") return { bytes: new Uint8Array(await request.arrayBuffer()) };
  if (type !== "application/json") {
    return new Response(
      JSON.stringify({
        code: "unknown",
        message: "send the request as application/json (or Connect's application/proto)",
      }),
      {
        status: 415,
        headers: {
          "content-type": "application/json",
          "accept-post": "application/json, application/proto",
        },
      },
    );
  }
  try {
    const text = await request.text();
    return { json: text.trim() === "" ? {} : JSON.parse(text) };
  } catch {
    return connectErrorResponse(Status.INVALID_ARGUMENT, "the request body is not valid JSON");
  }
}

/**
 * Calls `path` (`package.Service/Method`) on the plugin and answers as Connect does: a unary
 * reply as JSON (or protobuf bytes for a binary request), a server stream as NDJSON whose last
 * line is `{"error": …}` when it fails after its first message. `release(ok)` is called once,
 * when the call is over (for a stream, at its end).
 */
export async function answerGrpc(
  instance: GrpcInstance,
  path: string,
  body: GrpcBody,
  timeoutMs: number,
  release: (ok: boolean) => void,
): Promise<Response> {
  const { services } = instance;
  const options = { timeoutMs };
  const fail = (err: unknown) => {
    release(!isServerError(err));
    return errorResponseOf(err);
  };
  let method;
  try {
    method = services.method(path);
  } catch (err) {
    return fail(err);
  }
  let json: JsonValue = body.json ?? {};
  if (body.bytes) {
    if (method.kind !== "unary") {
      release(true);
      return connectErrorResponse(
        Status.UNIMPLEMENTED,
        `${path} is not unary; call it with application/json`,
      );
    }
    // Connect's binary unary: the same call, the messages as protobuf bytes.
    try {
      json = toJson(method.desc.input, fromBinary(method.desc.input, body.bytes), {
        registry: services.registry,
      });
    } catch (err) {
      release(true);
      return connectErrorResponse(
        Status.INVALID_ARGUMENT,
        `the body is not a ${method.input}: ${err instanceof Error ? err.message : err}`,
      );
    }
  }
  if (method.kind === "server_streaming") {
    let replies: AsyncIterator<unknown>;
    let first: IteratorResult<unknown>;
    try {
      replies = services.callServerStream(method, json, options)[Symbol.asyncIterator]();
      first = await replies.next();
    } catch (err) {
      return fail(err);
    }
    const encoder = new TextEncoder();
    let pending: IteratorResult<unknown> | undefined = first;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const item = pending ?? await replies.next();
          pending = undefined;
          if (item.done) {
            release(true);
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(JSON.stringify(item.value) + "\n"));
        } catch (err) {
          // The status line is sent already: the error is the stream's last line.
          release(!isServerError(err));
          controller.enqueue(encoder.encode(JSON.stringify({ error: errorBodyOf(err) }) + "\n"));
          controller.close();
        }
      },
      async cancel() {
        release(true);
        await replies.return?.();
      },
    });
    return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
  }
  try {
    const reply = await services.callUnary(method, json, options);
    release(true);
    if (body.bytes) {
      const message = fromJson(method.desc.output, reply, { registry: services.registry });
      return new Response(toBinary(method.desc.output, message), {
        headers: { "content-type": "application/proto" },
      });
    }
    return new Response(JSON.stringify(reply), {
      headers: { "content-type": "application/json" },
    });
  } catch (err) {
    return fail(err);
  }
}

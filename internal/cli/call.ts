/**
 * `plugwire call`: start a plugin, call one method with JSON through its reflection service,
 * print the reply (a server stream: one JSON line per reply), stop the plugin.
 *
 * @module
 */

import type { JsonValue } from "@bufbuild/protobuf";
import type { PluginClient } from "../client.ts";
import { DynamicError, loadServices } from "../dynamic.ts";
import { RpcError } from "../errors.ts";
import type { HandshakeInfo } from "../handshake.ts";
import type { HostSettings } from "./args.ts";
import { UsageError } from "./args.ts";
import { connectTo, launch, readHandshake, stopPlugin } from "./launch.ts";
import { paint, withProgress } from "./output.ts";
import { type CliIo, readTextFile } from "./system.ts";

/** Reads `--data`: JSON text, `@file`, or `-` for stdin; `{}` when absent. */
export async function readRequest(data: string | undefined, io: CliIo): Promise<JsonValue> {
  let text: string;
  let source: string;
  if (data === undefined) return {};
  if (data === "-") {
    text = await io.readStdin();
    source = "stdin";
  } else if (data.startsWith("@")) {
    source = data.slice(1);
    try {
      text = await readTextFile(source);
    } catch (err) {
      throw new UsageError(
        `--data ${data}: cannot read ${source}: ${(err as Error).message}`,
        "call",
      );
    }
  } else {
    text = data;
    source = "--data";
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new UsageError(
      `the request in ${source} is not JSON (${(err as Error).message}); ` +
        `write it like '{"key":"a"}'`,
      "call",
    );
  }
}

/** Runs `call`; returns the exit status. */
export async function call(
  settings: HostSettings,
  method: string,
  data: string | undefined,
  io: CliIo,
  json: boolean,
): Promise<number> {
  const c = paint(io, "stderr");
  const request = await readRequest(data, io);
  const launched = await withProgress(io, "starting the plugin", () => launch(settings));
  let client: PluginClient | undefined;
  const fail = (message: string) => {
    io.stderr(`${c.red("plugwire call")}: ${message}\n`);
    return 1;
  };
  try {
    const { outcome } = launched;
    if (outcome.kind !== "line") {
      const tail = launched.records.slice(-5).map((r) => `\n  ${r.raw}`).join("");
      return fail(
        outcome.kind === "timeout"
          ? `the plugin printed no handshake line within ${settings.timeoutMs} ms (--timeout)`
          : `the plugin exited (${outcome.status.signal ?? `status ${outcome.status.code}`}) ` +
            `before its handshake${tail ? "; its last stderr lines:" + tail : ""}`,
      );
    }
    let info: HandshakeInfo;
    try {
      info = readHandshake(launched, settings);
    } catch (err) {
      return fail((err as Error).message);
    }
    if (settings.network && info.network !== settings.network) {
      return fail(`expected network ${settings.network} (--network), got ${info.network}`);
    }
    if (launched.hostCert && !info.serverCert) {
      return fail(
        "AutoMTLS was asked for but the plugin returned no certificate; refusing plaintext " +
          "(drop --auto-mtls to talk plaintext)",
      );
    }
    try {
      client = await connectTo(launched, info, settings);
      const services = await loadServices(client, { timeoutMs: settings.timeoutMs });
      const target = services.method(method);
      const options = { timeoutMs: settings.timeoutMs };
      if (target.kind === "server_streaming") {
        for await (const reply of services.callServerStream(target, request, options)) {
          io.stdout(JSON.stringify(reply) + "\n");
        }
      } else {
        const reply = await withProgress(
          io,
          `calling ${target.path}`,
          () => services.callUnary(target, request, options),
        );
        io.stdout((json ? JSON.stringify(reply) : JSON.stringify(reply, null, 2)) + "\n");
      }
      return 0;
    } catch (err) {
      if (err instanceof DynamicError || err instanceof RpcError) return fail(err.message);
      return fail((err as Error).message);
    }
  } finally {
    if (launched.outcome.kind === "line") await stopPlugin(launched, client);
    await launched.dispose();
  }
}

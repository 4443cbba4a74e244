/**
 * What the KV host and plugin share: go-plugin's examples/grpc handshake.
 *
 * @module
 */

import type { HandshakeConfig } from "../../host.ts";

/** go-plugin's examples use this cookie and protocol version 1. */
export const KV_HANDSHAKE: HandshakeConfig = {
  protocolVersion: 1,
  magicCookieKey: "BASIC_PLUGIN",
  magicCookieValue: "hello",
};

/** The command that runs a TypeScript file of this repository as a plugin. */
export function denoPluginCommand(file: URL): string[] {
  const config = new URL("../../deno.json", import.meta.url);
  return [Deno.execPath(), "run", "-A", "--quiet", `--config=${config.pathname}`, file.pathname];
}

/**
 * `deno task gateway --config <file> [--port <n>]`: starts the gateway, prints its URL, and
 * runs until SIGTERM or SIGINT (then drains, stops every plugin and exits 0).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { exitProcess, writeRealStderr, writeRealStdout } from "../runtime.ts";
import { GatewayConfigError } from "./config.ts";
import { startGateway } from "./gateway.ts";
import { GatewayStartError } from "./listen.ts";

const usage = "usage: deno task gateway --config <file.toml> [--port <n>]\n";

let args;
try {
  args = parseArgs({
    options: {
      config: { type: "string", short: "c" },
      port: { type: "string", short: "p" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (err) {
  writeRealStderr(`${(err as Error).message}\n${usage}`);
  exitProcess(2);
}
if (args.help) {
  writeRealStdout(usage);
  exitProcess(0);
}
if (!args.config) {
  writeRealStderr(`--config is required\n${usage}`);
  exitProcess(2);
}
let port: number | undefined;
if (args.port !== undefined) {
  port = Number(args.port);
  if (!/^\d{1,5}$/.test(args.port) || port > 65535) {
    writeRealStderr(`--port: not a port number\n${usage}`);
    exitProcess(2);
  }
}

try {
  const gateway = await startGateway({ config: args.config, port });
  writeRealStdout(`plugwire gateway listening on ${gateway.url}\n`);
  await gateway.closed;
  exitProcess(0);
} catch (err) {
  if (err instanceof GatewayConfigError || err instanceof GatewayStartError) {
    writeRealStderr(`${err.message}\n`);
    exitProcess(1);
  }
  throw err;
}

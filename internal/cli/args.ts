/**
 * The `plugwire` command line: subcommands, the flags they share, and the help of each, read
 * with `node:util` parseArgs.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Network } from "../handshake.ts";

/** The subcommands. */
export const SUBCOMMANDS = ["inspect", "call", "check", "codegen", "bundle", "gateway"] as const;
/** One subcommand. */
export type Subcommand = typeof SUBCOMMANDS[number];

/** A command line the command cannot run: the message says what to do; exit status 2. */
export class UsageError extends Error {
  /** The subcommand whose help applies, if any. */
  readonly subcommand?: Subcommand;

  /**
   * @param message What is wrong and what to do.
   * @param subcommand The subcommand whose help applies.
   */
  constructor(message: string, subcommand?: Subcommand) {
    super(message);
    this.name = "UsageError";
    this.subcommand = subcommand;
  }
}

/** How to start and talk to the plugin: the flags every plugin subcommand shares. */
export interface HostSettings {
  /** The plugin command (after `--`). */
  cmd: string[];
  /** The magic cookie. */
  cookie: { key: string; value: string };
  /** The protocol versions the host offers. */
  versions: number[];
  /** Ask for AutoMTLS. */
  autoMtls: boolean;
  /** The network the plugin is expected to listen on, if given. */
  network?: Network;
  /** Extra environment for the plugin. */
  env: Record<string, string>;
  /** How long each step (start, a call, a stop) may take. */
  timeoutMs: number;
}

/** A parsed command line. */
export interface Invocation {
  subcommand?: Subcommand;
  help: boolean;
  json: boolean;
  host?: HostSettings;
  /** `call --method`. */
  method?: string;
  /** `call --data`. */
  data?: string;
  /** `gateway --config`, `--port`. */
  config?: string;
  port?: string;
  /** `codegen` and `bundle` arguments (passed on). */
  rest: string[];
}

const COMMON = {
  cookie: { type: "string" },
  versions: { type: "string" },
  "auto-mtls": { type: "boolean" },
  network: { type: "string" },
  env: { type: "string", multiple: true },
  timeout: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

const OPTIONS: Record<Subcommand, ParseArgsConfig["options"]> = {
  inspect: COMMON,
  check: COMMON,
  call: {
    ...COMMON,
    method: { type: "string", short: "m" },
    data: { type: "string", short: "d" },
  },
  codegen: { help: { type: "boolean", short: "h" } },
  bundle: { help: { type: "boolean", short: "h" } },
  gateway: {
    config: { type: "string", short: "c" },
    port: { type: "string", short: "p" },
    help: { type: "boolean", short: "h" },
  },
};

const COMMON_HELP = `Plugin options:
  --cookie KEY=VALUE   the plugin's magic cookie (required; go-plugin's examples: BASIC_PLUGIN=hello)
  --versions 1,2       protocol versions the host offers (default: 1)
  --auto-mtls          ask for AutoMTLS (a P-521 client certificate in PLUGIN_CLIENT_CERT)
  --network unix|tcp   the network the plugin must listen on (default: whichever it picks)
  --env K=V            extra environment for the plugin (repeatable)
  --timeout DURATION   limit for each step: 30s, 500ms, 2m (default: 30s)
  --json               machine-readable output
  -h, --help           this help
The plugin command comes after --, e.g. -- ./plugin-go-grpc or -- python3 plugin.py
`;

/** The help of the command, or of one subcommand. */
export function helpText(subcommand?: Subcommand): string {
  switch (subcommand) {
    case "inspect":
      return `plugwire inspect [options] -- <plugin command…>

Starts the plugin and prints what a host learns: the raw handshake line and each field, the
negotiated version, network and address, the TLS certificate (curve, subject, SANs, validity),
the services and methods from reflection, health, the plugin's stderr log records; then stops
it and reports how (Shutdown, SIGTERM, SIGKILL) and how long each step took.

${COMMON_HELP}
Example:
  plugwire inspect --cookie BASIC_PLUGIN=hello --auto-mtls -- ./plugin-go-grpc
`;
    case "call":
      return `plugwire call --method <package.Service/Method> [--data <json>|@file|-] [options] -- <plugin command…>

Starts the plugin, calls one method with a JSON request transcoded through the plugin's gRPC
reflection (like grpcurl, but it launches the plugin), and prints the reply as JSON; a
server-streaming method prints one JSON line per reply. Then it stops the plugin.

  -m, --method NAME    package.Service/Method (plugwire inspect lists them)
  -d, --data JSON      the request: JSON text, @file to read a file, - to read stdin (default: {})
${COMMON_HELP}
Example:
  plugwire call --cookie BASIC_PLUGIN=hello -m proto.KV/Get -d '{"key":"a"}' -- ./plugin-go-grpc
`;
    case "check":
      return `plugwire check [options] -- <plugin command…>

A conformance report, one line per protocol point: PASS, FAIL (what was expected, what came)
or SKIP (why). The points: the cookie refusal, the handshake line, version negotiation (highest
common; refusal when none), PLUGIN_UNIX_SOCKET_DIR, PLUGIN_MIN_PORT/MAX_PORT (TCP plugins),
health "plugin", AutoMTLS (certificate, client certificate required, a wrong one refused),
reflection, stdio and broker streams, Shutdown, and nothing left behind. It starts the plugin
several times. Exit status 0 only when nothing failed.

${COMMON_HELP}
Example:
  plugwire check --cookie BASIC_PLUGIN=hello -- ./plugin-go-grpc
`;
    case "codegen":
      return `plugwire codegen

Regenerates gen/ from proto/ (the codegen task of a plugwire checkout: buf and protoc-gen-es,
installed on first use). Run it in the checkout.
`;
    case "bundle":
      return `plugwire bundle <plugin.ts> <output>

Bundles a TypeScript plugin into one executable JavaScript file with a deno shebang (the
bundle task of a plugwire checkout, scripts/ship.ts). The file runs wherever Deno is on PATH.

Example:
  plugwire bundle examples/kv/plugin.ts ./kv-plugin && ./kv-plugin
`;
    case "gateway":
      return `plugwire gateway --config <file.toml> [--port <n>]

Starts the HTTP gateway described by the TOML file, prints its URL and runs until SIGTERM or
SIGINT.

  -c, --config FILE    the gateway's configuration (required)
  -p, --port N         listen on this port instead of the configured one
  -h, --help           this help
`;
    default:
      return `plugwire: inspect, call and conformance-check any go-plugin plugin

Usage: plugwire <subcommand> [options] [-- <plugin command…>]

Subcommands:
  inspect   start a plugin and show its handshake, TLS, services, health, logs and shutdown
  call      call one method of a plugin with JSON (through its gRPC reflection)
  check     a conformance report, one line per protocol point
  codegen   regenerate gen/ from proto/ (in a plugwire checkout)
  bundle    bundle a TypeScript plugin into one executable file
  gateway   start the HTTP gateway from a TOML file

Run plugwire <subcommand> --help for its options.
`;
  }
}

/** Parses `30s`, `500ms`, `2m` or a plain number of seconds into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `--timeout ${JSON.stringify(text)}: give a duration like 30s, 500ms or 2m`,
    );
  }
  const value = Number(match[1]);
  const ms = match[2] === "ms" ? value : match[2] === "m" ? value * 60_000 : value * 1000;
  if (ms <= 0) throw new UsageError("--timeout must be more than zero");
  return Math.round(ms);
}

function keyValue(flag: string, text: string, sub: Subcommand): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) {
    throw new UsageError(`${flag} ${JSON.stringify(text)}: write it as KEY=VALUE`, sub);
  }
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** Reads a command line (without the program name). */
export function parseCommandLine(argv: readonly string[]): Invocation {
  const dashes = argv.indexOf("--");
  const own = dashes < 0 ? [...argv] : argv.slice(0, dashes);
  const cmd = dashes < 0 ? [] : argv.slice(dashes + 1);
  const first = own.findIndex((a) => !a.startsWith("-"));
  if (first < 0) {
    const help = own.includes("--help") || own.includes("-h") || own.length === 0;
    if (!help) throw new UsageError(`unknown option ${own[0]}: start with a subcommand`);
    return { help: true, json: false, rest: [] };
  }
  const name = own[first];
  if (!(SUBCOMMANDS as readonly string[]).includes(name)) {
    throw new UsageError(
      `unknown subcommand ${JSON.stringify(name)}: use one of ${SUBCOMMANDS.join(", ")}`,
    );
  }
  const sub = name as Subcommand;
  const args = [...own.slice(0, first), ...own.slice(first + 1)];
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS[sub], allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\. To specify.*$/s, "")}`, sub);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const invocation: Invocation = {
    subcommand: sub,
    help: v.help === true,
    json: v.json === true,
    rest: [
      ...parsed.positionals,
      ...(dashes < 0 || sub === "inspect" || sub === "call" ||
          sub === "check"
        ? []
        : cmd),
    ],
  };
  if (invocation.help) return invocation;
  if (sub === "codegen" || sub === "bundle") return invocation;
  if (sub === "gateway") {
    invocation.config = v.config as string | undefined;
    invocation.port = v.port as string | undefined;
    if (!invocation.config) {
      throw new UsageError("--config is required: name the gateway's TOML file", sub);
    }
    return invocation;
  }

  if (parsed.positionals.length) {
    throw new UsageError(
      `unexpected ${JSON.stringify(parsed.positionals[0])}: put the plugin command after --`,
      sub,
    );
  }
  if (!cmd.length) {
    throw new UsageError("no plugin command: put it after --, e.g. -- ./plugin-go-grpc", sub);
  }
  if (!v.cookie) {
    throw new UsageError(
      "--cookie KEY=VALUE is required: the plugin's magic cookie (go-plugin's examples use " +
        "BASIC_PLUGIN=hello)",
      sub,
    );
  }
  const [key, value] = keyValue("--cookie", v.cookie as string, sub);
  const versionsText = (v.versions as string | undefined) ?? "1";
  const versions = versionsText.split(",").map((s) => s.trim());
  if (versions.some((s) => !/^\d+$/.test(s))) {
    throw new UsageError(
      `--versions ${
        JSON.stringify(versionsText)
      }: give whole numbers separated by commas, e.g. 1,2`,
      sub,
    );
  }
  const network = v.network as string | undefined;
  if (network !== undefined && network !== "unix" && network !== "tcp") {
    throw new UsageError(`--network ${JSON.stringify(network)}: use unix or tcp`, sub);
  }
  const env: Record<string, string> = {};
  for (const pair of (v.env as string[] | undefined) ?? []) {
    const [k, val] = keyValue("--env", pair, sub);
    env[k] = val;
  }
  invocation.host = {
    cmd,
    cookie: { key, value },
    versions: [...new Set(versions.map(Number))],
    autoMtls: v["auto-mtls"] === true,
    network: network as Network | undefined,
    env,
    timeoutMs: v.timeout === undefined ? 30_000 : parseDuration(v.timeout as string),
  };
  if (sub === "call") {
    invocation.method = v.method as string | undefined;
    invocation.data = v.data as string | undefined;
    if (!invocation.method) {
      throw new UsageError(
        "--method is required: name it as package.Service/Method (plugwire inspect lists them)",
        sub,
      );
    }
  }
  return invocation;
}

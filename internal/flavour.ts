/**
 * Protocol flavours: what differs between go-plugin's protocol, RPCPlugin's and Hipcheck's launch
 * protocol, as one object each behind one interface, so that the start flow (`start.ts`), the
 * connection (`connection.ts`) and the serve flow (`server.ts`) ask the flavour instead of
 * branching on its name (docs/protocol.md §2, §10; docs/ARCHITECTURE.md §3).
 *
 * A new launch protocol is a new object: Hipcheck's (`internal/hipcheck/flavour.ts`) has no
 * handshake line, cookie or TLS; its host passes `--port P --log-level L` and counts the plugin
 * as ready once a connection succeeds.
 *
 * @module
 */

import type { Network } from "./handshake.ts";
import { chooseTransport, padBase64, TRANSPORTS_ENV } from "./rpcplugin.ts";

/** Reads one variable of the environment a host gave the plugin. */
export type EnvReader = (name: string) => string | undefined;

/** What a host passes to a plugin it launches, for flavours that take arguments. */
export interface LaunchContext {
  /** The loopback port the plugin must listen on (host-chosen ports only). */
  port?: number;
  /** The log level the plugin should log at. */
  logLevel?: string;
}

/** One flavour of the protocol: the points where go-plugin, RPCPlugin and Hipcheck differ. */
export interface ProtocolFlavour {
  /** Its name, as `StartOptions.protocol` spells it. */
  readonly name: string;
  /**
   * How the host learns that the plugin is ready: its handshake line on stdout (go-plugin,
   * RPCPlugin), or a connection to the port the host chose that succeeds within retries
   * (Hipcheck).
   */
  readonly readiness: "handshake-line" | "connect-retry";
  /** Host: the variables this flavour adds to the plugin's environment. */
  hostEnv(): Record<string, string>;
  /** Host: the arguments this flavour appends to the plugin's command. */
  launchArgs(context: LaunchContext): string[];
  /**
   * TLS is mandatory: a host without TLS settings of its own asks for AutoMTLS and never
   * accepts plaintext; a plugin without TLS refuses to serve.
   */
  readonly tlsRequired: boolean;
  /** The plugin serves go-plugin's GRPCController; without it `kill()` starts at SIGTERM. */
  readonly hasController: boolean;
  /**
   * Plugin: exit when no protocol version is in common, rather than serve the lowest and let
   * the host refuse (go-plugin's way).
   */
  readonly exitWithoutCommonVersion: boolean;
  /** Plugin: whether the environment its host gave it asks for this flavour. */
  detect(env: EnvReader): boolean;
  /**
   * Plugin: the network to listen on, from the host's offer and the plugin's preference;
   * undefined when the host offers nothing plugwire speaks.
   */
  chooseNetwork(env: EnvReader, preferred: Network | undefined): Network | undefined;
  /** Plugin: the handshake's certificate field, from the certificate's unpadded base64 DER. */
  encodeCert(unpaddedBase64: string): string;
}

/** go-plugin's protocol: the default. */
export const goPluginFlavour: ProtocolFlavour = {
  name: "go-plugin",
  readiness: "handshake-line",
  hostEnv: () => ({}),
  launchArgs: () => [],
  tlsRequired: false,
  hasController: true,
  exitWithoutCommonVersion: false,
  detect: (env) => env(TRANSPORTS_ENV) === undefined,
  chooseNetwork: (_env, preferred) => preferred ?? "unix",
  encodeCert: (unpadded) => unpadded,
};

/**
 * RPCPlugin's (docs/protocol.md §10): go-plugin's handshake, but the host lists its transports
 * in `PLUGIN_TRANSPORTS` (whose presence tells the plugin), TLS is mandatory, the handshake's
 * certificate is padded base64, the plugin has no controller and exits when no version is in
 * common.
 */
export const rpcpluginFlavour: ProtocolFlavour = {
  name: "rpcplugin",
  readiness: "handshake-line",
  hostEnv: () => ({ [TRANSPORTS_ENV]: "unix,tcp" }),
  launchArgs: () => [],
  tlsRequired: true,
  hasController: false,
  exitWithoutCommonVersion: true,
  detect: (env) => env(TRANSPORTS_ENV) !== undefined,
  chooseNetwork: (env, preferred) => chooseTransport(env(TRANSPORTS_ENV) ?? "", preferred),
  encodeCert: padBase64,
};

/** The flavours a plugwire host or plugin speaks on go-plugin's handshake, by name. */
export const handshakeFlavours: Readonly<Record<"go-plugin" | "rpcplugin", ProtocolFlavour>> = {
  "go-plugin": goPluginFlavour,
  "rpcplugin": rpcpluginFlavour,
};

/** The host's flavour, from `StartOptions.protocol`. */
export function hostFlavour(protocol: "go-plugin" | "rpcplugin" | undefined): ProtocolFlavour {
  return handshakeFlavours[protocol ?? "go-plugin"];
}

/** The plugin's flavour, from the environment its host gave it. */
export function pluginFlavour(env: EnvReader): ProtocolFlavour {
  return rpcpluginFlavour.detect(env) ? rpcpluginFlavour : goPluginFlavour;
}

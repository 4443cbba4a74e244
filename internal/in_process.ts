/**
 * A plugin set served in this process and a host client connected to it, without spawning
 * (go-plugin's `TestPluginGRPCConn`): for plugin authors' unit tests. The plugin side is the
 * same registration `serve()` does (grpc_server.ts registrar, health, reflection, broker,
 * controller), on a private unix socket, optionally with AutoMTLS; the host side is the host's
 * own `connect()`, so dispensed clients, interceptors, timeouts and the broker behave as they
 * do with a real plugin process.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { HealthCheckResponse_ServingStatus } from "../gen/core/grpc/health/v1/health_pb.ts";
import { GrpcBroker } from "./broker.ts";
import type { PluginClient } from "./client.ts";
import { connect } from "./connection.ts";
import type { HostPluginSet, StartOptions } from "./options.ts";
import { thisProcess } from "./process.ts";
import type { HandshakeInfo } from "./handshake.ts";
import type { HealthService } from "./health.ts";
import { registerPluginServices } from "./plugin_services.ts";
import { makeTempDir, ownPid, removePath } from "./runtime.ts";
import type { ServeOptions } from "./serve_options.ts";
import { rejectOutOfDateClientCert, serverCredentials, type TlsConfig } from "./tls.ts";
import { bindServer } from "./transport.ts";

/**
 * Options of `connectInProcess()`: the plugin side as `serve()` takes it, the host side as
 * `startPlugin()` takes it.
 *
 * @typeParam P The host's plugins, by name.
 *
 * @example Both sides of a KV plugin
 * ```ts
 * import { type InProcessOptions } from "@plugwire/plugwire/testing";
 * import { grpcPlugin } from "@plugwire/plugwire/plugin";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const options: InProcessOptions<{ kv: typeof KV }> = {
 *   serve: { plugins: { kv: grpcPlugin(KV, { get: () => ({ value: new Uint8Array([1]) }) }) } },
 *   host: { plugins: { kv: KV }, callTimeoutMs: 5000 },
 *   autoMtls: true,
 * };
 * assert.equal(options.host.plugins?.kv, KV);
 * ```
 */
export interface InProcessOptions<P extends HostPluginSet = HostPluginSet> {
  /** The plugin side: its plugins, interceptors and server options, as `serve()` takes them. */
  serve: Pick<ServeOptions, "plugins" | "interceptors" | "grpcServerOptions">;
  /** The host side: its plugins, interceptors and call settings, as `startPlugin()` takes them. */
  host: Pick<StartOptions<P>, "plugins" | "interceptors" | "callTimeoutMs" | "grpcChannelOptions">;
  /** Speak mutual TLS with AutoMTLS certificates, as a host asking for AutoMTLS would. @default {false} */
  autoMtls?: boolean;
}

/**
 * A plugin set served in this process, with a connected host client.
 *
 * @typeParam P The host's plugins, by name.
 *
 * @example Naming the type in a test helper
 * ```ts
 * import type { InProcessPlugin } from "@plugwire/plugwire/testing";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * async function readText(plugin: InProcessPlugin<{ kv: typeof KV }>, key: string) {
 *   return new TextDecoder().decode((await plugin.dispense("kv").get({ key })).value);
 * }
 * ```
 */
export interface InProcessPlugin<P extends HostPluginSet = HostPluginSet> {
  /** The host's client, as `startPlugin()` returns it (do not `kill()` it: there is no process). */
  readonly client: PluginClient<P>;
  /** The plugin side's broker (what a plugin method's `ctx.broker` is). */
  readonly pluginBroker: GrpcBroker;
  /** The unix socket the plugin side listens on. */
  readonly address: string;
  /** The client of the named host plugin, as `PluginClient.dispense()`. */
  dispense: PluginClient<P>["dispense"];
  /** Disconnects the host, stops the plugin side, removes the socket. Idempotent. */
  close(): Promise<void>;
  /** {@link InProcessPlugin.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Serves `options.serve` in this process and connects a host client to it. */
export async function connectInProcess<P extends HostPluginSet>(
  options: InProcessOptions<P>,
): Promise<InProcessPlugin<P>> {
  const plugins = options.serve.plugins;
  if (!plugins) throw new TypeError("Cannot serve in process: give serve.plugins");
  if (!options.host.plugins) throw new TypeError("Cannot connect in process: give host.plugins");

  let pluginTls: TlsConfig | undefined;
  let hostTls: TlsConfig | undefined;
  if (options.autoMtls) {
    const { generateCertificate } = await import("./mtls.ts");
    const [hostCert, pluginCert] = await Promise.all([
      generateCertificate(),
      generateCertificate(),
    ]);
    pluginTls = { cert: pluginCert.certPem, key: pluginCert.keyPem, ca: hostCert.certPem };
    hostTls = { cert: hostCert.certPem, key: hostCert.keyPem, ca: pluginCert.certPem };
  }

  const socketDir = await makeTempDir("plugwire-inproc-");
  const pluginBroker = new GrpcBroker({
    network: "unix",
    socketDir,
    tls: pluginTls,
    grpcServerOptions: options.serve.grpcServerOptions,
  });
  const server = new grpc.Server({
    ...options.serve.grpcServerOptions,
    ...(pluginTls ? { interceptors: [rejectOutOfDateClientCert] } : {}),
  });
  let health: HealthService | undefined;

  let resolveExited!: () => void;
  const exited = new Promise<void>((resolve) => (resolveExited = resolve));
  let stopping: Promise<void> | undefined;
  let cleanup = () => Promise.resolve();
  const stop = () =>
    stopping ??= (async () => {
      health?.setAll(HealthCheckResponse_ServingStatus.NOT_SERVING);
      await pluginBroker.close();
      server.forceShutdown();
      await cleanup();
      await removePath(socketDir);
      resolveExited();
    })();

  // serve()'s registration (docs/protocol.md §6). No stdio service: nothing is captured in
  // process; the host's stdio reader ends quietly.
  try {
    ({ health } = registerPluginServices(server, pluginBroker, plugins, {
      interceptors: options.serve.interceptors,
      broker: { startStream: (requests) => pluginBroker.runStream(() => requests) },
      addController: (registrar) =>
        registrar.add(GRPCController, {
          shutdown() {
            setTimeout(() => void stop(), 0);
            return {};
          },
        }),
    }));
    const bound = await bindServer(server, serverCredentials(pluginTls), {
      network: "unix",
      socketDir,
    });
    cleanup = bound.cleanup;
    const info: HandshakeInfo = {
      coreVersion: 1,
      appVersion: 1,
      network: bound.network,
      address: bound.address,
      protocol: "grpc",
    };
    const hostOptions: StartOptions<P> = {
      ...options.host,
      handshake: {
        protocolVersion: 1,
        magicCookieKey: "PLUGWIRE_IN_PROCESS",
        magicCookieValue: "1",
      },
    };
    const client = await connect(info, options.host.plugins, hostTls, hostOptions, {
      name: "in-process",
      // Never signalled: the "plugin" is this process. close() only disconnects.
      process: thisProcess(ownPid(), exited.then(() => ({ code: 0, signal: null }))),
      reattached: true,
    });
    let closing: Promise<void> | undefined;
    const close = () =>
      closing ??= (async () => {
        await client.close();
        await stop();
      })();
    return {
      client,
      pluginBroker,
      address: bound.address,
      dispense: (name) => client.dispense(name),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The connection to a plugin: the grpc-js channel to the handshake's address, the diagnosis of a
 * channel that does not come up, and the protocol's own streams (broker, stdio) opened for the
 * plugin's whole life. A spawned, an attached and an in-process plugin all connect here
 * (docs/protocol.md §4, §5, §6.4, §6.5).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { GRPCBroker } from "../gen/core/plugin/grpc_broker_pb.ts";
import { GRPCStdio } from "../gen/core/plugin/grpc_stdio_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import { GrpcBroker } from "./broker.ts";
import { PluginClient } from "./client.ts";
import { PluginError, type RpcError } from "./errors.ts";
import { hostFlavour } from "./flavour.ts";
import { messageSizeOptions, toRpcError } from "./grpc.ts";
import { createServiceClient } from "./grpc_client.ts";
import type { HandshakeInfo } from "./handshake.ts";
import { clientSockets, hangUp } from "./hangup.ts";
import { PLUGIN_HEALTH_SERVICE } from "./health.ts";
import type { HostPluginSet, StartOptions } from "./options.ts";
import type { PluginProcess } from "./process.ts";
import { writeRealStderr, writeRealStdout } from "./runtime.ts";
import { drainStdio, type StdioSink } from "./stdio.ts";
import { channelCredentials, type TlsConfig } from "./tls.ts";
import { grpcTarget } from "./transport.ts";

/**
 * Waits for the channel to connect. Fails at the first failed attempt, as go-plugin's dial
 * does on a non-temporary error: the plugin listens before it prints its handshake line, so a
 * refused connection, a missing socket or a peer that does not speak HTTP/2 will not get better
 * by waiting.
 */
function waitForConnection(client: grpc.Client, timeoutMs: number): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) {
        return reject(new Error("the connection failed"));
      }
      if (state === grpc.connectivityState.SHUTDOWN) {
        return reject(new Error("the channel was closed"));
      }
      channel.watchConnectivityState(state, deadline, (err) => {
        if (err) reject(new Error(`no connection within ${timeoutMs} ms`));
        else check();
      });
    };
    check();
  });
}

/** Connects to a plugin at the handshake's address and opens the protocol's streams. */
export async function connect<P extends HostPluginSet>(
  info: HandshakeInfo,
  plugins: P,
  tls: TlsConfig | undefined,
  options: StartOptions<P>,
  extra: {
    name: string;
    process: PluginProcess;
    socketDir?: string;
    reattached: boolean;
    test?: boolean;
    handshakeLine?: string;
  },
): Promise<PluginClient<P>> {
  const { credentials, options: tlsOptions } = channelCredentials(tls);
  // The connection's sockets, to end it without a GOAWAY (see hangup.ts).
  const sockets = clientSockets(credentials);
  const messageSize = messageSizeOptions(options.maxMessageBytes);
  const grpcClient = new grpc.Client(grpcTarget(info.network, info.address), credentials, {
    ...messageSize,
    ...options.grpcChannelOptions,
    ...tlsOptions,
  });
  try {
    await waitForConnection(grpcClient, Math.min(options.startTimeoutMs ?? 60_000, 10_000));
  } catch (cause) {
    // The state says only that it failed; one call on the failed channel reports grpc-js's
    // last connection error (the OS reason, a TLS refusal, a name mismatch, ...).
    const lastError = await createServiceClient(Health, grpcClient)
      .check({ service: PLUGIN_HEALTH_SERVICE }, { timeoutMs: 1000 })
      .then(() => undefined, (err) => {
        const details = (toRpcError(err) as RpcError).details;
        return /Last error: (.*?)(?: \([\dTZ:.-]+\))?\.? Resolution note/s.exec(details)?.[1];
      });
    hangUp(sockets);
    grpcClient.close();
    throw new PluginError(
      "connection-failed",
      `Cannot connect to plugin ${JSON.stringify(extra.name)} at ${info.network}:${info.address}` +
        (tls ? " over mutual TLS" : "") + `: ${(cause as Error).message}` +
        (lastError ? ` (last error: ${lastError})` : ""),
      { cause },
    );
  }
  const broker = new GrpcBroker({
    network: info.network,
    socketDir: extra.socketDir,
    tls,
    grpcServerOptions: messageSize,
    grpcChannelOptions: { ...messageSize, ...options.grpcChannelOptions },
  });
  const client = new PluginClient<P>({
    info,
    plugins,
    grpc: grpcClient,
    sockets,
    tls,
    broker,
    killGraceMs: options.killGraceMs ?? 2000,
    controller: hostFlavour(options.protocol).hasController,
    callSettings: { interceptors: options.interceptors, timeoutMs: options.callTimeoutMs },
    ...extra,
  });

  // Like go-plugin's newGRPCClient: open the broker stream and the stdio stream right away, for
  // the plugin's whole life. A plugin without them still works: their errors are ignored.
  // Straight on the channel: the protocol's own streams live as long as the plugin, so neither
  // the caller's interceptors nor its default deadline apply to them.
  broker.runStream((outgoing) =>
    createServiceClient(GRPCBroker, grpcClient).startStream(outgoing, { signal: client.signal })
  );
  const sink = (option: StdioSink | "inherit" | "discard" | undefined, inherit: StdioSink) =>
    typeof option === "function" ? option : option === "inherit" ? inherit : () => {};
  void drainStdio(
    createServiceClient(GRPCStdio, grpcClient),
    {
      stdout: sink(options.syncStdout, writeRealStdout),
      stderr: sink(options.syncStderr, writeRealStderr),
    },
    client.signal,
    () => {},
  );
  return client;
}

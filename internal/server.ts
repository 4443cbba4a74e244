/**
 * The serve flow of the plugin side: check the magic cookie, start capturing output, negotiate
 * a version, set up TLS as the flavour asks, register the services (`plugin_services.ts`),
 * listen, print the handshake line, and serve until the host shuts the plugin down
 * (`serve_lifetime.ts`) (docs/protocol.md §2.2, §2.3, §3, §4, §6).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { GRPCController } from "../gen/core/plugin/grpc_controller_pb.ts";
import { GRPCStdio } from "../gen/core/plugin/grpc_stdio_pb.ts";
import { HealthCheckResponse_ServingStatus } from "../gen/core/grpc/health/v1/health_pb.ts";
import { GrpcBroker } from "./broker.ts";
import { PluginError } from "./errors.ts";
import { pluginFlavour } from "./flavour.ts";
import { messageSizeOptions, serviceDefinition } from "./grpc.ts";
import { responseDelivered, serviceHandlers } from "./grpc_server.ts";
import { formatHandshakeLine } from "./handshake.ts";
import { hangUp, serverSockets } from "./hangup.ts";
import { pluginLogger } from "./logger.ts";
import { negotiateVersion, parseProtocolVersions } from "./negotiate.ts";
import { encodeHandshakeCert } from "./pem.ts";
import { registerPluginServices } from "./plugin_services.ts";
import { debugBanner } from "./reattach.ts";
import { exitProcess, getEnv, ownPid, writeRealStderr, writeRealStdout } from "./runtime.ts";
import {
  REPLY_DELIVERY_MS,
  settlesWithin,
  STDIO_DRAIN_CAP_MS,
  STDIO_DRAIN_IDLE_MS,
  superviseServing,
  until,
} from "./serve_lifetime.ts";
import {
  pluginSets,
  type ServeOptions,
  type ServingPlugin,
  validateServeOptions,
} from "./serve_options.ts";
import { OutputCapture } from "./stdio.ts";
import { rejectOutOfDateClientCert, serverCredentials, type TlsConfig } from "./tls.ts";
import { bindServer } from "./transport.ts";

const COOKIE_MESSAGE = "This binary is a plugin. These are not meant to be executed directly.\n" +
  "Please execute the program that consumes these plugins, which will\n" +
  "load any plugins automatically\n";

const MISCONFIGURED_MESSAGE =
  "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n" +
  "key or value was set. Please notify the plugin author and report\n" +
  "this as a bug.\n";

/**
 * The process-wide output capture. serve() starts it once the magic cookie matches: a matching
 * cookie proves a host started the process (some hosts set nothing else), and a process that
 * only imports plugwire keeps its own stdout and stderr.
 */
export const outputCapture: OutputCapture = new OutputCapture();

/** One line for stderr: what went wrong, in words a host can show as they are. */
function describeFailure(err: unknown): string {
  if (err instanceof PluginError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function envPort(name: string): number {
  const value = getEnv(name);
  if (value === undefined || value === "") return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PluginError("misconfigured", `${name} is not a port number: ${value}`);
  }
  return port;
}

/**
 * Starts serving. Exits the process (status 1) when the cookie is missing or wrong, as
 * go-plugin does, before anything is created. Resolves once the handshake line is printed.
 *
 * Any failure before the handshake (bad options, a plugin missing a method, a socket that
 * cannot be bound) is written to the real stderr as one plain line, so that every host shows
 * it (a host whose plugin printed no handshake only has its stderr to go on), everything made
 * so far is released, and the error is thrown on.
 */
export async function startServing(options: ServeOptions): Promise<ServingPlugin> {
  const { magicCookieKey, magicCookieValue } = options.handshake;
  if (!magicCookieKey || !magicCookieValue) {
    writeRealStderr(MISCONFIGURED_MESSAGE);
    exitProcess(1);
  }
  // Debug mode is started by hand, on purpose: no cookie (go-plugin's test mode skips it too).
  if (!options.debug && getEnv(magicCookieKey) !== magicCookieValue) {
    writeRealStderr(COOKIE_MESSAGE);
    exitProcess(1);
  }
  // From here on stdout is the protocol channel: what the plugin prints goes to the host over
  // GRPCStdio, never before the handshake line.
  outputCapture.start();
  const undo: Array<() => void | Promise<void>> = [];
  try {
    return await serveAfterCookie(options, undo);
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // Releasing what a failed start made must not hide why it failed.
      }
    }
    outputCapture.stop();
    writeRealStderr(`plugwire: cannot serve this plugin: ${describeFailure(err)}\n`);
    throw err;
  }
}

async function serveAfterCookie(
  options: ServeOptions,
  undo: Array<() => void | Promise<void>>,
): Promise<ServingPlugin> {
  const log = options.logger ?? pluginLogger("plugwire");

  validateServeOptions(options);
  const sets = pluginSets(options);
  const offered = parseProtocolVersions(getEnv("PLUGIN_PROTOCOL_VERSIONS"));
  for (const bad of offered.invalid) {
    // go-plugin writes this without a newline; a line of its own reads better and parses the same.
    writeRealStderr(`server sent invalid plugin version ${JSON.stringify(bad)}\n`);
  }
  const version = negotiateVersion([...sets.keys()], offered.versions);
  const plugins = sets.get(version)!;
  const flavour = pluginFlavour(getEnv);
  if (flavour.exitWithoutCommonVersion && !offered.versions.includes(version)) {
    // RPCPlugin: no version in common means exit, not "serve the lowest".
    writeRealStderr(
      `plugin supports protocol versions [${[...sets.keys()].join(" ")}], host offers ` +
        `[${offered.versions.join(" ")}]: nothing in common\n`,
    );
    exitProcess(1);
  }

  // TLS: a provider, or AutoMTLS when the host sent its certificate; never both.
  let tls: TlsConfig | undefined;
  let handshakeCert = "";
  const hostCert = getEnv("PLUGIN_CLIENT_CERT");
  if (options.tls && hostCert) {
    // go-plugin lets the provider win silently; the host then expects a certificate in the
    // handshake, gets none, and cannot verify the provider's: refuse with the reason instead.
    throw new PluginError(
      "misconfigured",
      "the host asked for AutoMTLS (PLUGIN_CLIENT_CERT is set) but serve() was given its own " +
        "`tls` provider: configure the host with the matching TLS options instead of AutoMTLS, " +
        "or drop the provider",
    );
  }
  if (hostCert) {
    // go-plugin logs this and serves anyway, a socket no host can use; refuse the start.
    const { parseClientCertPem } = await import("./x509.ts");
    try {
      parseClientCertPem(hostCert);
    } catch (err) {
      log.error("client cert provided but failed to parse", {
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }
  if (options.tls) {
    tls = await options.tls();
  } else if (hostCert) {
    // Loaded only with AutoMTLS: the ASN.1 packages cost a plaintext plugin ~15 ms of start-up.
    const { generateCertificate } = await import("./mtls.ts");
    const own = await generateCertificate({ curve: options.autoMtlsCurve });
    tls = { cert: own.certPem, key: own.keyPem, ca: hostCert };
    handshakeCert = flavour.encodeCert(encodeHandshakeCert(own.der));
  }

  if (flavour.tlsRequired && !tls) {
    writeRealStderr(
      "RPCPlugin requires TLS: the host set PLUGIN_TRANSPORTS but no PLUGIN_CLIENT_CERT, " +
        "and this plugin has no TLS provider\n",
    );
    exitProcess(1);
  }
  const network = flavour.chooseNetwork(getEnv, options.network);
  if (network === undefined) {
    writeRealStderr(`no supported transport in PLUGIN_TRANSPORTS=${getEnv("PLUGIN_TRANSPORTS")}\n`);
    exitProcess(1);
  }
  const socketDir = getEnv("PLUGIN_UNIX_SOCKET_DIR") || undefined;
  const messageSize = messageSizeOptions(options.maxMessageBytes);
  const broker = new GrpcBroker({
    network,
    socketDir,
    tls,
    grpcServerOptions: { ...messageSize, ...options.grpcServerOptions },
    grpcChannelOptions: messageSize,
  });
  const server = new grpc.Server({
    ...messageSize,
    ...options.grpcServerOptions,
    ...(tls ? { interceptors: [rejectOutOfDateClientCert] } : {}),
  });
  undo.push(() => server.forceShutdown(), () => broker.close());

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let finishedObserved = false;
  const stdioCalls = new Set<object>();
  let stopping: Promise<void> | undefined;
  let releaseLifetime = () => {};
  undo.push(() => releaseLifetime());

  // The host keeps its broker stream open for the plugin's life; stopping ends it from here,
  // so that the stream's iteration ends before the connection does.
  const endStreams = new AbortController();
  const { health, reflection } = registerPluginServices(server, broker, plugins, {
    interceptors: options.interceptors,
    nameFailures: true,
    broker: {
      startStream: (requests) => until(broker.runStream(() => requests), endStreams.signal),
    },
    // Answer first, then stop once the host has read the answer: a clean reply lets a host
    // tell "shut down" from "crashed", and grpclib (python-plugin's host) fails a call that is
    // still in flight when its connection ends. Raw grpc-js, because only the call
    // object leads to the reply's HTTP/2 stream. Bounded, should the host never answer.
    addController: (registrar) =>
      registrar.addGrpcJs(serviceDefinition(GRPCController), {
        shutdown: (call: object, reply: (err: null, response: object) => void) => {
          reply(null, {});
          void settlesWithin(responseDelivered(call, responsePath), REPLY_DELIVERY_MS)
            .then(() => {
              const exiting = !finishedObserved && !options.debug;
              return stop(exiting).then(() => exiting);
            })
            .then((exiting) => {
              // As a Go plugin's process ends when plugin.Serve returns: once the host's
              // Shutdown is done (onShutdown run, output flushed), the process exits, unless
              // code waits on `finished` (then it ends when that code is done) or a developer
              // runs it in debug mode. Ending the process at once also spares the runtime's
              // teardown of a process left to drain (bench/README.md, "Shutdown"), and a stray
              // timer can no longer keep a shut-down plugin alive.
              if (exiting) exitProcess(0);
            });
        },
      }),
    // The same handler as any typed service, but holding on to each call: a stopping plugin
    // ends the host's output stream and waits until its end has left the process (stop()).
    addStdio: (registrar) => {
      const handlers = serviceHandlers(GRPCStdio, outputCapture.impl(), broker);
      const stream = handlers.streamStdio as (
        call: grpc.ServerWritableStream<unknown, unknown>,
      ) => void;
      registrar.addGrpcJs(serviceDefinition(GRPCStdio), {
        streamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          stdioCalls.add(call);
          call.once("close", () => stdioCalls.delete(call));
          stream(call);
        },
      });
    },
  });

  const bound = await bindServer(server, serverCredentials(tls), {
    network,
    socketDir,
    socketGroup: getEnv("PLUGIN_UNIX_SOCKET_GROUP") || undefined,
    minPort: envPort("PLUGIN_MIN_PORT"),
    maxPort: envPort("PLUGIN_MAX_PORT"),
  });
  undo.push(() => bound.cleanup());
  const sockets = serverSockets(server);
  const responsePath = { sockets, tls: tls !== undefined };

  /** `exiting`: the process exits right after, so grpc-js's own teardown can be skipped. */
  async function stop(exiting = false): Promise<void> {
    stopping ??= (async () => {
      health.setAll(HealthCheckResponse_ServingStatus.NOT_SERVING);
      // A host that reads the plugin's output gets all of it before the stream ends.
      await outputCapture.drained(STDIO_DRAIN_IDLE_MS, STDIO_DRAIN_CAP_MS);
      outputCapture.endStreams();
      // Its last bytes and its status reach the host before the connections end.
      await settlesWithin(
        Promise.all([...stdioCalls].map((call) => responseDelivered(call, responsePath))),
        REPLY_DELIVERY_MS,
      );
      endStreams.abort();
      await broker.close();
      // As go-plugin's Shutdown (grpc-go's Stop): the connections end at once, by their sockets,
      // without a GOAWAY. The host has read the reply already (see the controller above), and
      // Deno 2.9.6 can abort a plugwire host that receives a GOAWAY (hangup.ts).
      hangUp(sockets);
      // Closing the listener and the sessions costs ~2-4 ms (Deno's HTTP/2 session teardown)
      // that an exiting process does not need: its sockets are gone already.
      if (!exiting) server.forceShutdown();
      await bound.cleanup();
      lifetime.release();
      try {
        await options.onShutdown?.();
      } finally {
        outputCapture.stop();
        resolveStopped();
      }
    })();
    return await stopping;
  }
  const lifetime = superviseServing({
    network: bound.network,
    address: bound.address,
    socketDir,
    debug: options.debug !== undefined,
    log,
    stop,
    stopping: () => stopping,
    unbind: () => bound.cleanup(),
  });
  releaseLifetime = lifetime.releaseAll;

  const multiplexEnv = getEnv("PLUGIN_MULTIPLEX_GRPC");
  // Debug mode prints no handshake line but the reattach configuration (docs/protocol.md §9.3).
  const debugLine = options.debug && debugBanner(options.debug.name, {
    protocol: "grpc",
    protocolVersion: version,
    network: bound.network,
    address: bound.address,
    pid: ownPid(),
    test: true,
  });
  writeRealStdout(
    debugLine || formatHandshakeLine({
      appVersion: version,
      network: bound.network,
      address: bound.address,
      serverCert: handshakeCert,
      // The broker is not multiplexed; say so only when asked (see formatHandshakeLine).
      multiplex: multiplexEnv ? false : undefined,
    }),
  );
  outputCapture.handshakePrinted();

  return {
    protocolVersion: version,
    network: bound.network,
    address: bound.address,
    broker,
    services: reflection.names,
    get finished() {
      finishedObserved = true;
      return stopped;
    },
    shutdown: stop,
    [Symbol.asyncDispose]: stop,
  };
}

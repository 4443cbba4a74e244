/**
 * The start flow of the host: validate the options, build the plugin's environment, spawn it
 * (or attach to it), race its handshake line against its exit, the start timeout and the abort
 * signal, check the line and the TLS it offers, and connect. The straight path
 * start → process → connect → client (docs/protocol.md §2, §5, §7, §9).
 *
 * @module
 */

import { verifyChecksum } from "./checksum.ts";
import type { PluginClient } from "./client.ts";
import { connect } from "./connection.ts";
import { handshakeDiagnostics } from "./diagnostics.ts";
import { PluginError, type PluginErrorCode } from "./errors.ts";
import { hostFlavour } from "./flavour.ts";
import { type HandshakeInfo, parseHandshakeLine } from "./handshake.ts";
import type { Certificate } from "./mtls.ts";
import {
  type HostPluginSet,
  hostPluginSets,
  type StartOptions,
  validateStartOptions,
} from "./options.ts";
import { decodeHandshakeCert, derToPem } from "./pem.ts";
import {
  attachedProcess,
  readFirstLine,
  type SpawnedProcess,
  spawnPlugin,
  watchStderr,
} from "./process.ts";
import {
  baseName,
  chgrp,
  chmod,
  getEnvAll,
  makeTempDir,
  pidAlive,
  probeAddress,
  removePath,
  resolveExecutable,
  resolveGroup,
} from "./runtime.ts";
import type { TlsConfig } from "./tls.ts";

/**
 * Starts a plugin (or reattaches to one), completes the handshake and connects.
 * Any failure kills the process and removes what was created before the error is thrown.
 */
export async function startPlugin<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>> {
  try {
    return await start(options);
  } catch (err) {
    // The README promises a PluginError with a code for every failed start.
    if (err instanceof PluginError) throw err;
    throw new PluginError("misconfigured", `Cannot start the plugin: ${errorText(err)}`, {
      cause: err,
    });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * `err` as a PluginError naming the process a failed start had started, so that a caller can
 * check it is gone; a failure that is no PluginError yet gets `code`.
 */
function startError(
  err: unknown,
  code: PluginErrorCode,
  context: { name: string; path: string; pid?: number; stderrTail: string[] },
): PluginError {
  if (err instanceof PluginError) {
    return new PluginError(err.code, err.message, {
      cause: err.cause,
      path: err.path ?? context.path,
      stderrTail: err.stderrTail.length > 0 ? err.stderrTail : context.stderrTail,
      pid: context.pid,
    });
  }
  return new PluginError(
    code,
    `Cannot start plugin ${JSON.stringify(context.name)}: ${errorText(err)}`,
    { cause: err, path: context.path, pid: context.pid, stderrTail: context.stderrTail },
  );
}

async function start<P extends HostPluginSet>(
  options: StartOptions<P>,
): Promise<PluginClient<P>> {
  validateStartOptions(options);
  const sets = hostPluginSets(options);
  if (options.reattach) return await reattach(options, sets);

  const cmd = Array.isArray(options.cmd)
    ? { path: options.cmd[0], args: options.cmd.slice(1) }
    : options.cmd!;
  if (!cmd.path) throw new PluginError("misconfigured", "cmd needs an executable");
  const path = resolveExecutable(cmd.path);
  const name = options.name ?? baseName(cmd.path);
  if (options.checksum) await verifyChecksum(path, options.checksum);

  // Protocol variables come last, so neither the host's environment nor `env` can break them.
  const env: Record<string, string> = {
    ...(options.skipHostEnv ? {} : getEnvAll()),
    ...options.env,
    [options.handshake.magicCookieKey]: options.handshake.magicCookieValue,
    PLUGIN_MIN_PORT: String(options.minPort ?? 10000),
    PLUGIN_MAX_PORT: String(options.maxPort ?? 25000),
    PLUGIN_PROTOCOL_VERSIONS: [...sets.keys()].join(","),
  };
  const flavour = hostFlavour(options.protocol);
  Object.assign(env, flavour.hostEnv());
  let hostCert: Certificate | undefined;
  // A flavour with mandatory TLS (RPCPlugin): AutoMTLS unless the host brought its own.
  if (options.autoMtls || (flavour.tlsRequired && !options.tls)) {
    // Loaded only for AutoMTLS: the ASN.1 packages cost a plaintext host start-up time.
    const { generateCertificate } = await import("./mtls.ts");
    hostCert = await generateCertificate({ curve: options.autoMtlsCurve });
    env.PLUGIN_CLIENT_CERT = hostCert.certPem;
  } else {
    delete env.PLUGIN_CLIENT_CERT;
  }

  // A private directory for the plugin's sockets: killing the client removes it whole, even
  // when the plugin was SIGKILLed and could not remove its own socket files.
  let socketDir: string;
  try {
    socketDir = await makeTempDir("plugwire-", options.unixSocketDir);
  } catch (cause) {
    throw new PluginError(
      "misconfigured",
      `Cannot make a socket directory for plugin ${JSON.stringify(name)} in ` +
        `${options.unixSocketDir ?? "the temp dir"}: ${errorText(cause)}`,
      { cause, path },
    );
  }
  env.PLUGIN_UNIX_SOCKET_DIR = socketDir;
  let plugin: SpawnedProcess | undefined;
  let stderrTail: string[] = [];
  const fail = async (
    err: unknown,
    code: PluginErrorCode = "exited-before-connect",
  ): Promise<never> => {
    if (plugin) {
      plugin.signal("SIGKILL");
      await plugin.exited;
      plugin.release();
    }
    await removePath(socketDir);
    throw startError(err, code, { name, path, pid: plugin?.pid, stderrTail: [...stderrTail] });
  };

  try {
    if (options.unixSocketGroup) {
      try {
        await chgrp(socketDir, await resolveGroup(options.unixSocketGroup));
        await chmod(socketDir, 0o770);
      } catch (cause) {
        return await fail(
          new PluginError(
            "misconfigured",
            `Cannot give the socket directory to group ${
              JSON.stringify(options.unixSocketGroup)
            }: ${errorText(cause)}`,
            { cause },
          ),
        );
      }
      env.PLUGIN_UNIX_SOCKET_GROUP = options.unixSocketGroup;
    }
    try {
      plugin = await spawnPlugin(path, [...(cmd.args ?? []), ...flavour.launchArgs({})], {
        env,
        cwd: options.cwd,
        stdin: options.stdin ?? "inherit",
        socketDir,
      });
    } catch (cause) {
      throw new PluginError(
        "exited-before-connect",
        `Cannot start plugin ${JSON.stringify(name)}: ${(cause as Error).message}`,
        { cause, path },
      );
    }
  } catch (err) {
    return await fail(err);
  }
  const { child } = plugin;
  const stderr = watchStderr(child, name, options);
  stderrTail = stderr.tail;
  const lineReady = readFirstLine(child);

  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = await Promise.race([
    lineReady.then((r) => ({ kind: "line" as const, ...r })),
    child.exited.then((status) => ({ kind: "exit" as const, status })),
    new Promise<{ kind: "timeout" }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "timeout" }), startTimeoutMs);
    }),
    new Promise<{ kind: "abort" }>((resolve) => {
      if (!options.signal) return;
      onAbort = () => resolve({ kind: "abort" });
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener("abort", onAbort, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (onAbort) options.signal?.removeEventListener("abort", onAbort);

  if (outcome.kind === "timeout") {
    return await fail(
      new PluginError(
        "start-timeout",
        `timeout while waiting for plugin to start: ${JSON.stringify(name)} printed no ` +
          `handshake line within ${startTimeoutMs} ms`,
        { path, stderrTail: [...stderr.tail] },
      ),
    );
  }
  if (outcome.kind === "abort") {
    return await fail(
      new PluginError("closed", `Starting plugin ${JSON.stringify(name)} was aborted`, {
        cause: options.signal?.reason,
        path,
      }),
    );
  }
  if (outcome.kind === "exit" || (outcome.kind === "line" && outcome.eof && !outcome.line)) {
    // Let stderr finish so the tail holds the plugin's last words.
    const status = await child.exited;
    await Promise.race([stderr.done, new Promise((r) => setTimeout(r, 200))]);
    const tail = [...stderr.tail];
    const how = status.signal ? `signal ${status.signal}` : `status ${status.code}`;
    return await fail(
      new PluginError(
        "exited-before-connect",
        `plugin exited before we could connect: ${JSON.stringify(name)} ended with ${how}` +
          (tail.length ? `; its last stderr lines:\n  ${tail.join("\n  ")}` : ""),
        { path, stderrTail: tail },
      ),
    );
  }

  let info: HandshakeInfo;
  try {
    info = parseHandshakeLine(outcome.line, {
      hostVersions: [...sets.keys()],
      eof: outcome.eof,
      decodeCert: decodeHandshakeCert,
    });
  } catch (err) {
    if (!(err instanceof PluginError)) return await fail(err, "unrecognized-handshake");
    // Only an unrecognised line needs the notes about the executable (a stat and a read of
    // the file), so they are gathered here rather than before every parse.
    const message = err.code === "unrecognized-handshake"
      ? `${err.message}\n${(await handshakeDiagnostics(path)).trimEnd()}`
      : err.message;
    return await fail(
      new PluginError(err.code, message, { path, stderrTail: [...stderr.tail], cause: err.cause }),
    );
  }

  let tls: TlsConfig | undefined = options.tls;
  if (hostCert) {
    if (info.serverCert) {
      const { checkCertificate } = await import("./x509.ts");
      try {
        checkCertificate(info.serverCert);
      } catch (cause) {
        return await fail(
          new PluginError(
            "bad-certificate",
            `plugin ${JSON.stringify(name)} sent a handshake certificate that cannot be used: ` +
              (cause as Error).message,
            { cause },
          ),
        );
      }
      tls = { cert: hostCert.certPem, key: hostCert.keyPem, ca: derToPem(info.serverCert) };
    } else if (options.allowPlaintextFallback && !flavour.tlsRequired) {
      tls = undefined;
    } else {
      return await fail(
        new PluginError(
          "tls-required",
          `plugin ${JSON.stringify(name)} did not return a certificate although the host asked ` +
            "for AutoMTLS; refusing to fall back to plaintext (set allowPlaintextFallback to " +
            "accept, or upgrade the plugin)",
          { path },
        ),
      );
    }
  }

  try {
    return await connect(info, sets.get(info.appVersion)!, tls, options, {
      handshakeLine: outcome.line,
      name,
      process: plugin,
      socketDir,
      reattached: false,
    });
  } catch (err) {
    return await fail(err, "connection-failed");
  }
}

async function reattach<P extends HostPluginSet>(
  options: StartOptions<P>,
  sets: Map<number, P>,
): Promise<PluginClient<P>> {
  const config = options.reattach!;
  const plugins = sets.get(config.protocolVersion);
  if (!plugins) {
    throw new PluginError(
      "incompatible-app-version",
      `incompatible API version with plugin. Plugin version: ${config.protocolVersion}, ` +
        `Client versions: [${[...sets.keys()].join(" ")}]`,
      { pid: config.pid },
    );
  }
  const name = options.name ?? `pid ${config.pid}`;
  // Like go-plugin: the pid must be alive and one dial of the address must succeed.
  if (!pidAlive(config.pid) || !(await probeAddress(config.network, config.address))) {
    throw new PluginError("process-not-found", "reattachment process not found", {
      pid: config.pid,
    });
  }
  const process = attachedProcess(config.pid);
  const info: HandshakeInfo = {
    coreVersion: 1,
    appVersion: config.protocolVersion,
    network: config.network,
    address: config.address,
    protocol: "grpc",
  };
  let client: PluginClient<P>;
  try {
    client = await connect(info, plugins, config.tls ?? options.tls, options, {
      name,
      process,
      socketDir: config.socketDir,
      reattached: true,
      test: config.test,
    });
  } catch (cause) {
    process.release();
    throw new PluginError("process-not-found", "reattachment process not found", {
      cause,
      pid: config.pid,
    });
  }
  return client;
}

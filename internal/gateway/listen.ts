/**
 * The gateway's socket: HTTP or HTTPS with `Deno.serve`. TLS comes from PEM files; any
 * problem with them stops the start (plugincore.md §9 bug 14: no quiet fallback to HTTP).
 * On Node, serve {@link GatewayCore.fetch} with any fetch-style server adapter instead.
 *
 * @module
 */

import { readFile } from "../runtime.ts";
import type { ConnInfo } from "./server.ts";

/** A listening socket. */
export interface Listener {
  /** `http://host:port` or `https://host:port`. */
  readonly url: string;
  /** The bound port. */
  readonly port: number;
  /** Stops accepting, waits for in-flight requests up to `deadlineMs`, then closes. */
  shutdown(deadlineMs: number): Promise<void>;
}

/**
 * The gateway cannot start serving (the address, the TLS files). Nothing is left running.
 *
 * @example A certificate file that is not one stops the start
 * ```ts
 * import { GatewayStartError, parseGatewayConfig, startGateway } from "@plugwire/plugwire/gateway";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/cert.pem`, "junk");
 * await Deno.writeTextFile(`${dir}/key.pem`, "junk");
 * const config = parseGatewayConfig(`listen = "127.0.0.1:0"\n[tls]\ncert = "cert.pem"\nkey = "key.pem"`, {
 *   file: `${dir}/plugwire.toml`,
 * });
 * await assert.rejects(
 *   startGateway({ config, handleSignals: false, log: () => {} }),
 *   (err) => err instanceof GatewayStartError && err.code === "tls",
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class GatewayStartError extends Error {
  /** `tls` for certificate/key problems, `listen` for the address, `runtime` off Deno. */
  readonly code: "tls" | "listen" | "runtime";
  /**
   * Creates the error.
   *
   * @param code What could not be used.
   * @param message Says what and why.
   * @param options The underlying error.
   */
  constructor(code: "tls" | "listen" | "runtime", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GatewayStartError";
    this.code = code;
  }
}

/** Serves `handler` on `hostname:port`, over TLS when `tls` names the files. */
export async function listen(
  handler: (request: Request, info: ConnInfo) => Promise<Response>,
  options: { hostname: string; port: number; tls?: { certFile: string; keyFile: string } },
): Promise<Listener> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (!deno?.serve) {
    throw new GatewayStartError(
      "runtime",
      "serving needs Deno; on Node, pass the gateway's fetch() to a fetch-style HTTP server",
    );
  }
  let tls: { cert: string; key: string } | undefined;
  if (options.tls) {
    const read = async (what: string, file: string) => {
      try {
        return new TextDecoder().decode(await readFile(file));
      } catch (err) {
        throw new GatewayStartError("tls", `cannot read the TLS ${what} ${file}`, { cause: err });
      }
    };
    tls = {
      cert: await read("certificate", options.tls.certFile),
      key: await read("key", options.tls.keyFile),
    };
    if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(tls.cert)) {
      throw new GatewayStartError("tls", `${options.tls.certFile} holds no PEM certificate`);
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.key)) {
      throw new GatewayStartError("tls", `${options.tls.keyFile} holds no PEM private key`);
    }
  }
  let server: { shutdown(): Promise<void>; finished: Promise<void>; addr: { port: number } };
  try {
    server = deno.serve(
      {
        hostname: options.hostname,
        port: options.port,
        ...(tls ?? {}),
        onListen() {},
        onError() {
          return new Response(JSON.stringify({ code: "internal", message: "internal error" }), {
            status: 500,
            headers: { "content-type": "application/json" },
          });
        },
      },
      (request: Request, info: { remoteAddr: { hostname: string } }) =>
        handler(request, { remoteAddr: info.remoteAddr.hostname }),
    );
  } catch (err) {
    throw new GatewayStartError(
      tls ? "tls" : "listen",
      tls
        ? `cannot serve HTTPS with ${options.tls!.certFile} and ${options.tls!.keyFile}: ${
          (err as Error).message
        }`
        : `cannot listen on ${options.hostname}:${options.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const port = server.addr.port;
  const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  const shownHost = host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `${tls ? "https" : "http"}://${shownHost}:${port}`,
    port,
    async shutdown(deadlineMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.shutdown(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
      ]);
      clearTimeout(timer);
    },
  };
}

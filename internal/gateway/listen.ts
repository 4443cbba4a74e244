/**
 * The gateway's socket: HTTP or HTTPS with `Deno.serve` on Deno, `node:http(s)` on Node. TLS
 * comes from PEM files; any problem with them stops the start (plugincore.md §9 bug 14: no
 * quiet fallback to HTTP).
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
  const describe = (err: unknown) =>
    new GatewayStartError(
      tls ? "tls" : "listen",
      tls
        ? `cannot serve HTTPS with ${options.tls!.certFile} and ${options.tls!.keyFile}: ${
          (err as Error).message
        }`
        : `cannot listen on ${options.hostname}:${options.port}: ${(err as Error).message}`,
      { cause: err },
    );
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const served = deno?.serve
    ? serveWithDeno(deno, handler, options, tls, describe)
    : await serveWithNode(handler, options, tls, describe);
  const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  const shownHost = host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host;
  return {
    url: `${tls ? "https" : "http"}://${shownHost}:${served.port}`,
    port: served.port,
    async shutdown(deadlineMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        served.shutdown(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
      ]);
      clearTimeout(timer);
    },
  };
}

type Handler = (request: Request, info: ConnInfo) => Promise<Response>;
interface Served {
  port: number;
  shutdown(): Promise<void>;
}

const INTERNAL_ERROR = () =>
  new Response(JSON.stringify({ code: "internal", message: "internal error" }), {
    status: 500,
    headers: { "content-type": "application/json" },
  });

function serveWithDeno(
  // deno-lint-ignore no-explicit-any
  deno: any,
  handler: Handler,
  options: { hostname: string; port: number },
  tls: { cert: string; key: string } | undefined,
  describe: (err: unknown) => GatewayStartError,
): Served {
  try {
    const server = deno.serve(
      {
        hostname: options.hostname,
        port: options.port,
        ...(tls ?? {}),
        onListen() {},
        onError: INTERNAL_ERROR,
      },
      (request: Request, info: { remoteAddr: { hostname: string } }) =>
        handler(request, { remoteAddr: info.remoteAddr.hostname }),
    );
    return { port: server.addr.port, shutdown: () => server.shutdown() };
  } catch (err) {
    throw describe(err);
  }
}

/** Node: `node:http(s)` requests turned into fetch Requests and back. */
async function serveWithNode(
  handler: Handler,
  options: { hostname: string; port: number },
  tls: { cert: string; key: string } | undefined,
  describe: (err: unknown) => GatewayStartError,
): Promise<Served> {
  const http = await import("node:http");
  const https = await import("node:https");
  const { Readable } = await import("node:stream");
  const listener = async (
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
  ) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) { for (const v of value) headers.append(name, v); }
      else if (value !== undefined) headers.set(name, value);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
      method: req.method,
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
      // @ts-ignore: Node's fetch needs `duplex` for a streamed body; the DOM types lack it.
      duplex: hasBody ? "half" : undefined,
    });
    let response: Response;
    try {
      response = await handler(request, { remoteAddr: req.socket.remoteAddress ?? "" });
    } catch {
      response = INTERNAL_ERROR();
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      const prev = out[name];
      out[name] = prev === undefined ? value : ([] as string[]).concat(prev, value);
    });
    res.writeHead(response.status, out);
    if (!response.body) {
      res.end();
      return;
    }
    const reader = response.body.getReader();
    res.on("close", () => void reader.cancel().catch(() => {}));
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      res.write(value);
    }
    res.end();
  };
  let server: import("node:http").Server;
  try {
    server = tls
      ? https.createServer({ cert: tls.cert, key: tls.key }, listener)
      : http.createServer(listener);
  } catch (err) {
    throw describe(err);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(describe(err)));
    server.listen(options.port, options.hostname, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

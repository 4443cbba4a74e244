/**
 * gRPC credentials from one TLS configuration. The same configuration serves the main
 * connection and every broker connection (docs/protocol.md §5.2): the side that accepts is the TLS
 * server, the side that dials is the TLS client, and each pins the peer's certificate.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";

/**
 * Mutual TLS settings, PEM encoded.
 *
 * @example Manual TLS from certificate files
 * ```ts
 * import type { StartOptions, TlsConfig } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 *
 * async function hostOptions(dir: string): Promise<StartOptions> {
 *   const tls: TlsConfig = {
 *     cert: await Deno.readTextFile(`${dir}/host.crt`),
 *     key: await Deno.readTextFile(`${dir}/host.key`),
 *     ca: await Deno.readTextFile(`${dir}/plugin.crt`), // the plugin's certificate, or its CA
 *     serverName: "kv-plugin", // a name in the plugin's certificate
 *   };
 *   return {
 *     cmd: ["./kv-plugin"],
 *     handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *     plugins: { kv: KV },
 *     tls,
 *   };
 * }
 * ```
 */
export interface TlsConfig {
  /** This side's certificate chain (PEM). */
  cert: string;
  /** This side's private key (PEM). */
  key: string;
  /** The certificates this side trusts for its peer (PEM); with AutoMTLS, the peer's own. */
  ca: string;
  /**
   * The name the server's certificate must carry (default `localhost`, as go-plugin's
   * AutoMTLS certificates do).
   */
  serverName?: string;
}

/** Server credentials: plaintext without `tls`, else mutual TLS requiring a client certificate. */
export function serverCredentials(tls: TlsConfig | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    Buffer.from(tls.ca),
    [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }],
    true,
  );
}

/** Channel credentials and the options that go with them. */
export function channelCredentials(
  tls: TlsConfig | undefined,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  const serverName = tls.serverName ?? "localhost";
  return {
    credentials: grpc.credentials.createSsl(
      Buffer.from(tls.ca),
      Buffer.from(tls.key),
      Buffer.from(tls.cert),
    ),
    options: {
      "grpc.ssl_target_name_override": serverName,
      "grpc.default_authority": serverName,
    },
  };
}

/** The validity window of a connection's client certificate, read once per connection. */
const clientCertWindows = new WeakMap<object, { from: number; to: number } | null>();

/**
 * A server interceptor refusing calls over a connection whose client certificate is expired
 * or not yet valid: Deno's node:tls server checks the chain of a client certificate but not
 * its validity period (Go's does).
 *
 * Reading the peer certificate (`getAuthContext()`) costs tens of microseconds a call on Deno,
 * so the window is kept per HTTP/2 session when grpc-js lets us see it; the time check itself
 * still runs on every call, as before.
 */
export const rejectOutOfDateClientCert: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start(next) {
      const session = (call as { stream?: { session?: object } }).stream?.session;
      let window = session ? clientCertWindows.get(session) : undefined;
      if (window === undefined) {
        const cert = call.getAuthContext().sslPeerCertificate;
        window = cert?.valid_from
          ? { from: Date.parse(cert.valid_from), to: Date.parse(cert.valid_to) }
          : null;
        if (session) clientCertWindows.set(session, window);
      }
      const now = Date.now();
      if (window && (now < window.from || now > window.to)) {
        const cert = call.getAuthContext().sslPeerCertificate;
        call.sendStatus({
          code: grpc.status.UNAUTHENTICATED,
          details: `client certificate is not valid now (${cert?.valid_from} .. ${cert?.valid_to})`,
          metadata: new grpc.Metadata(),
        });
        return;
      }
      next();
    },
  });

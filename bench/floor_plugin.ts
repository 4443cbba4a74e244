/**
 * The runtime's floor for a plugin (bench/README.md, "Floors"): a go-plugin plugin written by
 * hand on `node:http2` alone, without grpc-js, protobuf-es or plugwire. The bench bundles it like
 * the plugwire plugin and runs it with the same flags, so a Go host's cold start, unary call,
 * stream and Shutdown against it is what this runtime costs before any library.
 *
 * It answers what the bench jobs call: grpctest.Test/Double (field 1 in, twice it as field 2 out),
 * plugwire.bench.Bench/Echo (the request frames echoed as they come: the same bytes make valid
 * BytesValue replies), grpc.health.v1.Health/Check, plugin.GRPCController/Shutdown (reply, then
 * exit), and keeps go-plugin's broker and stdio streams open. Everything else is UNIMPLEMENTED.
 * With PLUGIN_CLIENT_CERT (AutoMTLS) it makes a P-521 certificate with WebCrypto, as go-plugin
 * and plugwire do, and serves TLS that requires the host's certificate.
 *
 * @module
 */

import * as http2 from "node:http2";
import { b64, certificate, pem } from "./floor_cert.ts";

const GRPC = { ":status": 200, "content-type": "application/grpc" };

// --- gRPC, framed by hand -----------------------------------------------------------------------

function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Field 1 (a varint) of a framed message. */
function readInput(body: Uint8Array): number {
  let v = 0;
  let scale = 1;
  for (let i = 6; i < body.length; i++) {
    v += (body[i] & 0x7f) * scale;
    scale *= 0x80;
    if (!(body[i] & 0x80)) break;
  }
  return v;
}

function unary(stream: http2.ServerHttp2Stream, answer: (body: Uint8Array) => Uint8Array): void {
  const chunks: Uint8Array[] = [];
  stream.on("data", (c: Uint8Array) => chunks.push(c));
  stream.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] : new Uint8Array(
      chunks.reduce<number[]>((a, c) => (a.push(...c), a), []),
    );
    stream.respond(GRPC, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame(answer(body)));
  });
}

function openStream(stream: http2.ServerHttp2Stream, echo: boolean): void {
  stream.respond(GRPC, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  if (echo) stream.on("data", (c: Uint8Array) => stream.write(c));
  else stream.resume();
  stream.on("end", () => stream.end());
}

const env = (k: string) => Deno.env.get(k);
if (env("BASIC_PLUGIN") !== "hello") {
  console.error("This binary is a plugin. These are not meant to be executed directly.");
  Deno.exit(1);
}
const clientCert = env("PLUGIN_CLIENT_CERT");
const tls = clientCert ? await certificate() : undefined;
const server = tls
  ? http2.createSecureServer({
    key: tls.key,
    cert: pem("CERTIFICATE", tls.cert),
    ca: [clientCert!],
    requestCert: true,
    rejectUnauthorized: true,
  })
  : http2.createServer();
const dir = env("PLUGIN_UNIX_SOCKET_DIR") || env("TMPDIR") || "/tmp";
const path = `${dir}/plugin${Math.random().toString(36).slice(2, 11)}`;

function exit(): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Already gone.
  }
  Deno.exit(0);
}

// Both server kinds emit the same "stream" event with a server stream.
server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
  switch (headers[":path"]) {
    case "/grpctest.Test/Double":
      return unary(stream, (body) => new Uint8Array([0x10, ...varint(readInput(body) * 2)]));
    case "/grpc.health.v1.Health/Check":
      return unary(stream, () => new Uint8Array([0x08, 0x01]));
    case "/plugin.GRPCController/Shutdown":
      stream.on("close", exit);
      return unary(stream, () => new Uint8Array(0));
    case "/plugwire.bench.Bench/Echo":
      return openStream(stream, true);
    case "/plugin.GRPCBroker/StartStream":
    case "/plugin.GRPCStdio/StreamStdio":
      return openStream(stream, false);
    default:
      stream.respond({ ...GRPC, "grpc-status": "12" }, { endStream: true });
  }
});
Deno.addSignalListener("SIGTERM", exit);
server.listen(path, () => {
  const cert = tls ? `|${b64(tls.cert).replace(/=+$/, "")}` : "";
  console.log(`1|1|unix|${path}|grpc${cert}`);
});

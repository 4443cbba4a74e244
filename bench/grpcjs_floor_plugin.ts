/**
 * The grpc-js floor (bench/README.md, "Floors"): the same go-plugin plugin as
 * bench/floor_plugin.ts, but on `@grpc/grpc-js` alone instead of hand-framed `node:http2`; no
 * protobuf-es, no plugwire. Issue 15 keeps grpc-js as plugwire's gRPC stack and asks for proof
 * where a target cannot be reached with it: this plugin is what grpc-js costs by itself, so a
 * target that this floor already misses cannot be met by any plugin built on grpc-js.
 *
 * Messages travel as raw bytes (identity serializers); the few fields it needs are read and
 * written as varints by hand. It serves grpctest.Test/Double (field 1 in, twice it as field 2
 * out), grpctest.Test/Bidirectional (go-plugin's broker callback: waits for the host's ConnInfo
 * for the request's id on the GRPCBroker stream, dials that address with a grpc-js Client, calls
 * grpctest.PingPong/Ping and answers with the id), plugwire.bench.Bench/Echo (frames echoed as
 * they come), grpc.health.v1.Health/Check, plugin.GRPCController/Shutdown (reply, then exit), and
 * keeps go-plugin's stdio stream open. With PLUGIN_CLIENT_CERT (AutoMTLS) it serves TLS that
 * requires the host's certificate, with the floor's WebCrypto certificate (bench/floor_cert.ts).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { b64, certificate, pem } from "./floor_cert.ts";

// --- Bytes as messages --------------------------------------------------------------------------

const identity = (b: Buffer): Buffer => b;

function method(path: string, requestStream: boolean, responseStream: boolean) {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
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

/** A varint at `at`: its value and where the next field starts. */
function readVarint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let scale = 1;
  while (at < b.length) {
    const byte = b[at++];
    v += (byte & 0x7f) * scale;
    scale *= 0x80;
    if (!(byte & 0x80)) break;
  }
  return [v, at];
}

/** The fields of a message: varints as numbers, length-delimited fields as bytes. */
function fields(b: Uint8Array): Map<number, number | Uint8Array> {
  const out = new Map<number, number | Uint8Array>();
  let at = 0;
  while (at < b.length) {
    const [tag, next] = readVarint(b, at);
    at = next;
    if ((tag & 7) === 0) {
      const [v, after] = readVarint(b, at);
      out.set(tag >>> 3, v);
      at = after;
    } else if ((tag & 7) === 2) {
      const [n, start] = readVarint(b, at);
      out.set(tag >>> 3, b.subarray(start, start + n));
      at = start + n;
    } else {
      throw new Error(`unexpected wire type ${tag & 7}`);
    }
  }
  return out;
}

const numberField = (b: Uint8Array, n: number) => {
  const v = fields(b).get(n);
  return typeof v === "number" ? v : 0;
};

// --- go-plugin's broker, plugin side (non-multiplexed) -------------------------------------------

interface ConnInfo {
  network: string;
  address: string;
}

/** ConnInfos the host sent, by broker id, and the dials waiting for one. */
const connInfos = new Map<number, ConnInfo>();
const waiting = new Map<number, (info: ConnInfo) => void>();

function received(message: Uint8Array): void {
  const f = fields(message);
  const id = f.get(1);
  const network = f.get(2);
  const address = f.get(3);
  if (typeof id !== "number" || !(network instanceof Uint8Array)) return; // a knock: not used
  const info = {
    network: new TextDecoder().decode(network),
    address: new TextDecoder().decode(address as Uint8Array),
  };
  const wake = waiting.get(id);
  if (wake) wake(info);
  else connInfos.set(id, info);
}

/** go-plugin's Dial: the host's ConnInfo for `id`, waited for at most 5 s. */
function connInfo(id: number): Promise<ConnInfo> {
  const info = connInfos.get(id);
  if (info) {
    connInfos.delete(id);
    return Promise.resolve(info);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`timeout waiting for connection info for broker id ${id}`));
    }, 5000);
    waiting.set(id, (info) => {
      clearTimeout(timer);
      waiting.delete(id);
      resolve(info);
    });
  });
}

const PONG = Buffer.from([0x0a, 0x04, ...new TextEncoder().encode("pong")]);

async function callBack(id: number): Promise<void> {
  const { network, address } = await connInfo(id);
  const target = network === "unix" ? `unix://${address}` : address;
  const client = new grpc.Client(target, channelCredentials, channelOptions);
  try {
    const pong = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpctest.PingPong/Ping",
        identity,
        identity,
        Buffer.alloc(0),
        (err, value) => err ? reject(err) : resolve(value!),
      )
    );
    if (!pong.equals(PONG)) throw new Error(`bad pong ${pong.toString("hex")}`);
  } finally {
    client.close();
  }
}

// --- Serving ------------------------------------------------------------------------------------

const env = (k: string) => Deno.env.get(k);
if (env("BASIC_PLUGIN") !== "hello") {
  console.error("This binary is a plugin. These are not meant to be executed directly.");
  Deno.exit(1);
}
const clientCert = env("PLUGIN_CLIENT_CERT");
const tls = clientCert ? await certificate() : undefined;
const certPem = tls ? pem("CERTIFICATE", tls.cert) : "";
const channelCredentials = tls
  ? grpc.credentials.createSsl(
    Buffer.from(clientCert!),
    Buffer.from(tls.key),
    Buffer.from(certPem),
  )
  : grpc.credentials.createInsecure();
// go-plugin's certificates name "localhost", whatever the address.
const channelOptions = tls ? { "grpc.ssl_target_name_override": "localhost" } : {};
const serverCredentials = tls
  ? grpc.ServerCredentials.createSsl(
    Buffer.from(clientCert!),
    [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(certPem) }],
    true,
  )
  : grpc.ServerCredentials.createInsecure();
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

type Unary = grpc.handleUnaryCall<Buffer, Buffer>;
type Bidi = grpc.handleBidiStreamingCall<Buffer, Buffer>;

const server = new grpc.Server();
server.addService({
  Double: method("/grpctest.Test/Double", false, false),
  Bidirectional: method("/grpctest.Test/Bidirectional", false, false),
}, {
  Double: ((call, callback) => {
    callback(null, Buffer.from([0x10, ...varint(numberField(call.request, 1) * 2)]));
  }) as Unary,
  Bidirectional: ((call, callback) => {
    const id = numberField(call.request, 1);
    callBack(id).then(
      () => callback(null, Buffer.from([0x08, ...varint(id)])),
      (err) => callback({ code: grpc.status.UNAVAILABLE, details: String(err) }),
    );
  }) as Unary,
});
server.addService({ Echo: method("/plugwire.bench.Bench/Echo", true, true) }, {
  Echo: ((call) => {
    call.on("data", (message: Buffer) => call.write(message));
    call.on("end", () => call.end());
    call.on("error", () => {});
  }) as Bidi,
});
server.addService({ Check: method("/grpc.health.v1.Health/Check", false, false) }, {
  Check: ((_call, callback) => callback(null, Buffer.from([0x08, 0x01]))) as Unary,
});
server.addService({ Shutdown: method("/plugin.GRPCController/Shutdown", false, false) }, {
  Shutdown: ((call, callback) => {
    // Exit once the reply's HTTP/2 stream has closed (grpc-js keeps it on the call it wraps;
    // without interceptors that is one level down); at the latest after a moment.
    const stream = (call as unknown as { call?: { stream?: { once?: unknown } } }).call?.stream;
    if (stream && typeof stream.once === "function") {
      (stream as { once(e: "close", fn: () => void): void }).once("close", exit);
    }
    setTimeout(exit, 50);
    callback(null, Buffer.alloc(0));
  }) as Unary,
});
server.addService({ StartStream: method("/plugin.GRPCBroker/StartStream", true, true) }, {
  StartStream: ((call) => {
    call.on("data", (message: Buffer) => received(message));
    call.on("end", () => call.end());
    call.on("error", () => {});
  }) as Bidi,
});
server.addService({ StreamStdio: method("/plugin.GRPCStdio/StreamStdio", false, true) }, {
  // Kept open, never written to: the floor has no output to forward.
  StreamStdio: ((call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    call.on("error", () => {});
  }) as grpc.handleServerStreamingCall<Buffer, Buffer>,
});

Deno.addSignalListener("SIGTERM", exit);
server.bindAsync(`unix://${path}`, serverCredentials, (err) => {
  if (err) {
    console.error(err);
    Deno.exit(1);
  }
  const cert = tls ? `|${b64(tls.cert).replace(/=+$/, "")}` : "";
  console.log(`1|1|unix|${path}|grpc${cert}`);
});

/**
 * The plugwire host of the benchmark: runs one measurement job (the JSON format shared with
 * the Go and Python hosts, see bench/README.md) against any plugin that serves the bench
 * services, through {@link startPlugin}, and prints one JSON line.
 *
 *     deno run -A bench/host.ts JOB_JSON
 *
 * @module
 */

import type { handleUnaryCall } from "@grpc/grpc-js";
import { type PluginClient, startPlugin } from "../host.ts";
import { KV_HANDSHAKE } from "../examples/kv/shared.ts";
import { PingPong, Test } from "../gen/grpctest/grpctest_pb.ts";
import { Bench } from "./bench_service.ts";

/** A measurement job (see bench/README.md). */
interface Job {
  kind: "cold" | "session" | "scale" | "spawn" | "h2floor" | "gfloor" | "gbroker";
  cmd: string[];
  mtls?: boolean;
  reps?: number;
  n?: number;
  unary?: { warmup: number; calls: number; rounds: number };
  throughput?: { concurrency: number[]; calls: number; rounds: number };
  stream?: { msg_bytes: number; total_bytes: number; rounds: number };
  stdio?: { chunk_bytes: number; total_bytes: number; rounds: number };
  broker?: { calls: number; warmup: number };
}

type Result = Record<string, unknown>;
const plugins = { bench: Test, echo: Bench };

function procStatus(pid: number | "self"): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
      const [key, rest] = line.split(":");
      if (key === "VmRSS" || key === "VmHWM") out[key] = parseInt(rest);
    }
  } catch {
    // The process is gone.
  }
  return out;
}

/** CPU time (ms) a process has used so far, all threads (schedstat, ns). */
function cpuMs(pid: number): number {
  let ns = 0;
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(
          Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0],
        );
      } catch {
        // The thread is gone.
      }
    }
  } catch {
    // The process is gone.
  }
  return ns / 1e6;
}

/** A started plugin, its typed clients, and a counter of the bytes its stdout streamed. */
class Session {
  stdoutBytes = 0;
  #wake: (() => void) | undefined;
  constructor(readonly job: Job) {}
  client!: PluginClient<typeof plugins>;

  async start(): Promise<this> {
    this.client = await startPlugin({
      cmd: this.job.cmd,
      handshake: KV_HANDSHAKE,
      plugins,
      autoMtls: this.job.mtls ?? false,
      logger: () => {},
      syncStdout: (bytes) => {
        this.stdoutBytes += bytes.length;
        this.#wake?.();
      },
    });
    return this;
  }

  get test() {
    return this.client.dispense("bench");
  }

  async double(): Promise<void> {
    const { output } = await this.test.double({ input: 21 });
    if (output !== 42) throw new Error(`Double(21) = ${output}`);
  }

  async waitStdout(total: number, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.stdoutBytes < total) {
      if (performance.now() > deadline) {
        throw new Error(`stdio: ${this.stdoutBytes} of ${total} bytes arrived`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
      });
    }
  }
}

async function cold(job: Job): Promise<Result> {
  const total: number[] = [];
  const connect: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < (job.reps ?? 1); i++) {
    const t0 = performance.now();
    const s = await new Session(job).start();
    const t1 = performance.now();
    await s.double();
    const t2 = performance.now();
    total.push(t2 - t0);
    connect.push(t1 - t0);
    cpu.push(cpuMs(s.client.pid));
    await s.client.kill();
  }
  return { cold_ms: total, connect_ms: connect, plugin_cpu_ms: cpu };
}

async function throughput(s: Session, concurrency: number, calls: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next++ < calls) await s.double();
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return calls / ((performance.now() - t0) / 1000);
}

async function echo(s: Session, msgBytes: number, totalBytes: number): Promise<number> {
  const n = Math.floor(totalBytes / msgBytes);
  const payload = new Uint8Array(msgBytes);
  async function* requests() {
    for (let i = 0; i < n; i++) yield { value: payload };
  }
  const t0 = performance.now();
  let got = 0;
  for await (const { value } of s.client.dispense("echo").echo(requests())) got += value.length;
  if (got !== n * msgBytes) throw new Error(`echo: got ${got} bytes, want ${n * msgBytes}`);
  return got / 1e6 / ((performance.now() - t0) / 1000);
}

async function stdio(s: Session, chunk: number, total: number): Promise<number> {
  const payload = new Uint8Array(chunk).fill(0x78);
  const want = s.stdoutBytes + Math.floor(total / chunk) * chunk;
  const base = s.stdoutBytes;
  const t0 = performance.now();
  for (let sent = 0; sent + chunk <= total; sent += chunk) {
    await s.test.printStdio({ stdout: payload });
  }
  await s.waitStdout(want);
  return (want - base) / 1e6 / ((performance.now() - t0) / 1000);
}

/** go-plugin's callback pattern: a fresh broker id, the plugin dials it and calls back. */
async function brokerRound(s: Session): Promise<number> {
  const t0 = performance.now();
  const broker = s.client.broker;
  const id = broker.nextId();
  const server = await broker.acceptAndServe(
    id,
    (r) => r.add(PingPong, { ping: () => ({ msg: "pong" }) }),
  );
  const res = await s.test.bidirectional({ id });
  const elapsed = performance.now() - t0;
  await server.close();
  if (res.id !== id) throw new Error(`Bidirectional(${id}) returned ${res.id}`);
  return elapsed;
}

/** Measures, prints the result, then kills the plugin (a crash while stopping loses nothing). */
async function session(job: Job): Promise<Result> {
  const s = await new Session(job).start();
  const res: Result = {};
  try {
    await s.double();
    if (job.unary) {
      const { warmup, calls, rounds } = job.unary;
      for (let i = 0; i < warmup; i++) await s.double();
      res.plugin_idle = procStatus(s.client.pid);
      const samples: number[] = [];
      const pluginCpu = cpuMs(s.client.pid);
      const hostCpu = cpuMs(Deno.pid);
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < calls; i++) {
          const t0 = performance.now();
          await s.double();
          samples.push((performance.now() - t0) * 1000);
        }
      }
      res.unary_us = samples;
      res.unary_plugin_cpu_us = (cpuMs(s.client.pid) - pluginCpu) * 1000 / samples.length;
      res.unary_host_cpu_us = (cpuMs(Deno.pid) - hostCpu) * 1000 / samples.length;
    }
    if (job.throughput) {
      const by: Record<string, number[]> = {};
      for (const c of job.throughput.concurrency) {
        for (let r = 0; r < job.throughput.rounds; r++) {
          (by[c] ??= []).push(await throughput(s, c, job.throughput.calls));
        }
      }
      res.throughput = by;
    }
    if (job.stream) {
      const v: number[] = [];
      for (let r = 0; r < job.stream.rounds; r++) {
        v.push(await echo(s, job.stream.msg_bytes, job.stream.total_bytes));
      }
      res.stream_mbps = v;
    }
    if (job.stdio) {
      const v: number[] = [];
      for (let r = 0; r < job.stdio.rounds; r++) {
        v.push(await stdio(s, job.stdio.chunk_bytes, job.stdio.total_bytes));
      }
      res.stdio_mbps = v;
    }
    if (job.broker) {
      const v: number[] = [];
      for (let i = 0; i < job.broker.warmup + job.broker.calls; i++) {
        const ms = await brokerRound(s);
        if (i >= job.broker.warmup) v.push(ms * 1000);
        // What was measured so far, in case the process dies (see bench/README.md).
        if (v.length && v.length % 20 === 0) console.log(JSON.stringify({ partial: v }));
      }
      res.broker_us = v;
    }
    res.plugin_peak = procStatus(s.client.pid);
    print({ ...res, ok: true });
  } finally {
    await s.client.kill();
  }
  return res;
}

async function scale(job: Job): Promise<Result> {
  const t0 = performance.now();
  const started = await Promise.allSettled(
    Array.from({ length: job.n ?? 1 }, async () => {
      const s = await new Session(job).start();
      await s.double();
      return s;
    }),
  );
  const elapsed = performance.now() - t0;
  const host = procStatus("self");
  const sessions = started.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const pluginsRss = sessions.reduce((n, s) => n + (procStatus(s.client.pid).VmRSS ?? 0), 0);
  await Promise.all(sessions.map((s) => s.client.kill()));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return { start_all_ms: elapsed, host, plugins_rss_kb: pluginsRss };
}

/**
 * The floor under grpc-js on this runtime: the same unary Double call, framed by hand (5-byte
 * gRPC prefix, protobuf-es for the messages) over one `node:http2` session, without grpc-js.
 * The plugin is started (and the socket found) through startPlugin as usual.
 */
async function h2floor(job: Job): Promise<Result> {
  const s = await new Session(job).start();
  try {
    const { connect } = await import("node:http2");
    const net = await import("node:net");
    const { Buffer } = await import("node:buffer");
    const { create, fromBinary, toBinary } = await import("@bufbuild/protobuf");
    const { TestRequestSchema, TestResponseSchema } = await import(
      "../gen/grpctest/grpctest_pb.ts"
    );
    const address = s.client.address;
    const session = s.client.network === "unix"
      ? connect("http://localhost", { createConnection: () => net.connect(address) })
      : connect(`http://${address}`);
    await new Promise((resolve, reject) => session.once("connect", resolve).once("error", reject));
    const body = toBinary(TestRequestSchema, create(TestRequestSchema, { input: 21 }));
    const call = () =>
      new Promise<void>((resolve, reject) => {
        const frame = Buffer.alloc(5 + body.length);
        frame.writeUInt32BE(body.length, 1);
        frame.set(body, 5);
        const req = session.request({
          ":method": "POST",
          ":path": "/grpctest.Test/Double",
          "content-type": "application/grpc",
          te: "trailers",
        });
        const chunks: Uint8Array[] = [];
        let status: string | undefined;
        req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        req.on("trailers", (t) => (status = String(t["grpc-status"])));
        req.on("error", reject);
        req.on("end", () => {
          const all = Buffer.concat(chunks);
          const { output } = fromBinary(TestResponseSchema, all.subarray(5));
          if (status !== "0" || output !== 42) reject(new Error(`status ${status}, ${output}`));
          else resolve();
        });
        req.end(frame);
      });
    const { warmup, calls, rounds } = job.unary ?? { warmup: 500, calls: 2000, rounds: 1 };
    for (let i = 0; i < warmup; i++) await call();
    const samples: number[] = [];
    const hostCpu = cpuMs(Deno.pid);
    for (let i = 0; i < calls * rounds; i++) {
      const t0 = performance.now();
      await call();
      samples.push((performance.now() - t0) * 1000);
    }
    const hostCpuUs = (cpuMs(Deno.pid) - hostCpu) * 1000 / samples.length;
    session.close();
    return { unary_us: samples, unary_host_cpu_us: hostCpuUs };
  } finally {
    await s.client.kill();
  }
}

/**
 * The client floor of grpc-js on this runtime: the same unary Double calls through a bare
 * grpc-js Client (`makeUnaryRequest`, identity serializers, the message bytes written by hand),
 * without protobuf-es and plugwire's client. The plugin is started through startPlugin as usual.
 */
async function gfloor(job: Job): Promise<Result> {
  const s = await new Session(job).start();
  try {
    const grpc = await import("@grpc/grpc-js");
    const { Buffer } = await import("node:buffer");
    const target = s.client.network === "unix" ? `unix://${s.client.address}` : s.client.address;
    const client = new grpc.Client(target, grpc.credentials.createInsecure());
    const identity = (b: InstanceType<typeof Buffer>) => b;
    const request = Buffer.from([0x08, 21]); // TestRequest{input: 21}
    const want = Buffer.from([0x10, 42]); // TestResponse{output: 42}
    const call = () =>
      new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(
          "/grpctest.Test/Double",
          identity,
          identity,
          request,
          (err, value) => {
            if (err) reject(err);
            else if (!value?.equals(want)) {
              reject(new Error(`Double(21): ${value?.toString("hex")}`));
            } else resolve();
          },
        )
      );
    const { warmup, calls, rounds } = job.unary ?? { warmup: 500, calls: 2000, rounds: 1 };
    for (let i = 0; i < warmup; i++) await call();
    const samples: number[] = [];
    const hostCpu = cpuMs(Deno.pid);
    for (let i = 0; i < calls * rounds; i++) {
      const t0 = performance.now();
      await call();
      samples.push((performance.now() - t0) * 1000);
    }
    const hostCpuUs = (cpuMs(Deno.pid) - hostCpu) * 1000 / samples.length;
    client.close();
    return { unary_us: samples, unary_host_cpu_us: hostCpuUs };
  } finally {
    await s.client.kill();
  }
}

/**
 * The host-side broker floor of grpc-js: {@link brokerRound}'s callback pattern, timed the same
 * way, on a bare grpc-js Client and Server (identity serializers, the message bytes written by
 * hand), without protobuf-es and plugwire's client and broker. The plugin is started through
 * startPlugin as usual; the rounds go over a grpc-js connection of their own, with a
 * `GRPCBroker/StartStream` stream of their own on it: go-plugin's GRPCBrokerServer (v1.8.0,
 * grpc_broker.go) feeds the ConnInfo of every StartStream call into the one broker, so the
 * plugin's `Dial(id)` finds these as it finds plugwire's. Plaintext, unix sockets.
 */
async function gbroker(job: Job): Promise<Result> {
  if (job.mtls) throw new Error("gbroker: plaintext only");
  const s = await new Session(job).start();
  const grpc = await import("@grpc/grpc-js");
  const { Buffer } = await import("node:buffer");
  type Bytes = InstanceType<typeof Buffer>;
  const identity = (b: Bytes) => b;
  const varint = (v: number): number[] => {
    const out: number[] = [];
    for (; v > 0x7f; v = Math.floor(v / 0x80)) out.push((v % 0x80) | 0x80);
    out.push(v);
    return out;
  };
  /** A length-delimited (string) field. */
  const text = (field: number, value: string): number[] => {
    const bytes = new TextEncoder().encode(value);
    return [(field << 3) | 2, ...varint(bytes.length), ...bytes];
  };
  const target = s.client.network === "unix" ? `unix://${s.client.address}` : s.client.address;
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const stream = client.makeBidiStreamRequest(
    "/plugin.GRPCBroker/StartStream",
    identity,
    identity,
  );
  // The plugin only dials here (no AcceptAndServe): nothing is expected back.
  stream.on("data", () => {});
  stream.on("error", () => {});
  const dir = Deno.makeTempDirSync({ prefix: "gbroker-" });
  const pong = Buffer.from(text(1, "pong")); // PongResponse{msg: "pong"}
  const pingPong = {
    Ping: {
      path: "/grpctest.PingPong/Ping",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
  const ping: handleUnaryCall<Bytes, Bytes> = (_call, callback) => callback(null, pong);
  // Far from plugwire's own broker ids (1, 2, …), which this job never takes anyway.
  let nextId = 1_000_000;
  const round = async (): Promise<number> => {
    const t0 = performance.now();
    const id = nextId++;
    const server = new grpc.Server();
    server.addService(pingPong, { Ping: ping });
    const path = `${dir}/${id}.sock`;
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(
        `unix://${path}`,
        grpc.ServerCredentials.createInsecure(),
        (err) => err ? reject(err) : resolve(),
      )
    );
    // ConnInfo{service_id: id, network: "unix", address: path}
    stream.write(Buffer.from([0x08, ...varint(id), ...text(2, "unix"), ...text(3, path)]));
    const request = Buffer.from([0x08, ...varint(id)]); // BidirectionalRequest{id}
    const reply = await new Promise<Bytes>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpctest.Test/Bidirectional",
        identity,
        identity,
        request,
        (err, value) => err ? reject(err) : resolve(value!),
      )
    );
    const elapsed = performance.now() - t0;
    server.forceShutdown();
    try {
      Deno.removeSync(path);
    } catch {
      // grpc-js removed it.
    }
    // BidirectionalResponse{id} is the same bytes as the request.
    if (!reply.equals(request)) {
      throw new Error(`Bidirectional(${id}) returned ${reply.toString("hex")}`);
    }
    return elapsed;
  };
  try {
    const { warmup, calls } = job.broker ?? { calls: 200, warmup: 20 };
    const v: number[] = [];
    for (let i = 0; i < warmup + calls; i++) {
      const ms = await round();
      if (i >= warmup) v.push(ms * 1000);
      // What was measured so far, in case the process dies (like the session job).
      if (v.length && v.length % 20 === 0) console.log(JSON.stringify({ partial: v }));
    }
    return { broker_us: v };
  } finally {
    stream.end();
    client.close();
    await s.client.kill();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function spawn(job: Job): Promise<Result> {
  const v: number[] = [];
  for (let i = 0; i < (job.reps ?? 1); i++) {
    const t0 = performance.now();
    const child = new Deno.Command(job.cmd[0], { args: job.cmd.slice(1), stdout: "piped" })
      .spawn();
    const reader = child.stdout.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || value.includes(10)) break;
    }
    v.push(performance.now() - t0);
    reader.releaseLock();
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
  }
  return { spawn_ms: v };
}

let printed = false;
function print(result: Result): void {
  if (printed) return;
  printed = true;
  console.log(JSON.stringify(result));
}

const job = JSON.parse(Deno.args[0]) as Job;
try {
  const res = await { cold, session, scale, spawn, h2floor, gfloor, gbroker }[job.kind](job);
  print({ ...res, ok: true });
} catch (err) {
  print({ ok: false, error: String((err as Error)?.stack ?? err) });
  Deno.exitCode = 1;
}

/**
 * Checks shared by the interop files: the grpctest calls as a plugwire host makes them, and
 * the handshakes and commands of the peers.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HandshakeConfig, PluginClient, PluginLogRecord, ServiceClient } from "../../host.ts";
import { PingPong, type Test } from "../../gen/grpctest/grpctest_pb.ts";
import { AsyncQueue } from "../../internal/queue.ts";
import { denoCommand, eventually } from "../_util.ts";
import { peers } from "./_peers.ts";
import type { Case } from "./_run.ts";
import type { Variant } from "./_matrix.ts";

/** go-plugin's examples/grpc and examples/bidirectional, our helper plugin and goplugin. */
export const BASIC_HANDSHAKE: HandshakeConfig = {
  protocolVersion: 1,
  magicCookieKey: "BASIC_PLUGIN",
  magicCookieValue: "hello",
};

/** python-plugin's examples/greeter. */
export const GREETER_HANDSHAKE: HandshakeConfig = {
  protocolVersion: 1,
  magicCookieKey: "GREETER_PLUGIN",
  magicCookieValue: "hello-from-pyplugin",
};

/** What go-plugin's test (and gohost's stdio step) prints through PrintStdio. */
export const STDIO_OUT = "hello\nworld!";
/** The stderr half of {@link STDIO_OUT}. */
export const STDIO_ERR = "and some error\n messages!";

/** Go plugins listen on unix sockets only (go-plugin's serverListener on every OS but Windows). */
export const GO_PLUGIN_NO_TCP =
  "go-plugin v1.8.0 plugins listen on a unix socket on every OS but Windows (server.go serverListener_unix)";

/** The plugwire helper plugin (tests/fixtures/helper_plugin.ts), as an argv. */
export const HELPER_PLUGIN: string[] = denoCommand("tests/fixtures/helper_plugin.ts");
/** examples/counter/plugin.ts (`COUNTER_NETWORK` picks unix or tcp), as an argv. */
export const COUNTER_PLUGIN: string[] = denoCommand("examples/counter/plugin.ts");
/** examples/kv/plugin.ts (`KV_NETWORK` picks unix or tcp), as an argv. */
export const KV_EXAMPLE_PLUGIN: string[] = denoCommand("examples/kv/plugin.ts");

/** The python-plugin greeter: the example itself on unix, our force_tcp launcher on TCP. */
export function greeterCommand(network: Variant["network"]): string[] {
  return network === "unix" ? [peers.PY_VENV_PYTHON, peers.PY_GREETER_PLUGIN] : [
    peers.PY_VENV_PYTHON,
    new URL("python/greeter_tcp.py", import.meta.url).pathname,
    peers.PY_PLUGIN_SDIST,
  ];
}

/** Collects a plugwire host's log records and GRPCStdio bytes. */
export class Sinks {
  readonly records: PluginLogRecord[] = [];
  readonly #out: Uint8Array[] = [];
  readonly #err: Uint8Array[] = [];
  readonly logger = (record: PluginLogRecord): void => void this.records.push(record);
  readonly syncStdout = (bytes: Uint8Array): void => void this.#out.push(bytes.slice());
  readonly syncStderr = (bytes: Uint8Array): void => void this.#err.push(bytes.slice());

  /** Everything received on the plugin's stdout stream so far, decoded. */
  get stdout(): string {
    return decodeAll(this.#out);
  }
  /** Everything received on the plugin's stderr stream so far, decoded. */
  get stderr(): string {
    return decodeAll(this.#err);
  }
}

function decodeAll(chunks: Uint8Array[]): string {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

/** The case environment plus the plugwire host options every interop host test uses. */
export function hostOptions(c: Case, v: Variant, sinks: Sinks, env: Record<string, string> = {}) {
  return {
    env: { ...c.env, ...env },
    cwd: c.dir,
    unixSocketDir: c.dir,
    stdin: "null" as const,
    autoMtls: v.mtls,
    logger: sinks.logger,
    syncStdout: sinks.syncStdout,
    syncStderr: sinks.syncStderr,
    startTimeoutMs: 30_000,
  };
}

/** The connection is what the variant says: network, and TLS exactly when AutoMTLS. */
export function assertTransport(plugin: PluginClient, v: Variant): void {
  assert.equal(plugin.network, v.network, "network of the handshake");
  const tls = plugin.reattachConfig().tls;
  assert.equal(tls !== undefined, v.mtls, v.mtls ? "mutual TLS in use" : "plaintext in use");
}

/**
 * Kills the plugin and checks that it went on its own after the Shutdown call, within the
 * 2 s grace before SIGTERM: a started plugin exits with status 0 and no signal (SIGTERM would
 * give a signal, or 143); a reattached one is gone (its pid is polled once a second).
 */
export async function killGracefully(
  plugin: PluginClient,
  options: { reattached?: boolean } = {},
): Promise<number> {
  const started = performance.now();
  await plugin.kill();
  const ms = Math.round(performance.now() - started);
  assert.ok(plugin.hasExited, "the plugin exited");
  if (!options.reattached) {
    assert.deepEqual(await plugin.exited, { code: 0, signal: null }, "exit status after Shutdown");
  }
  assert.ok(ms < 2000, `kill() took ${ms} ms: the plugin did not exit on Shutdown alone`);
  return ms;
}

/**
 * Runs `body` against the plugin, then kills it: gracefully checked ({@link killGracefully})
 * when the body passed, plainly when it threw (its error is the one that counts).
 */
export async function exercise(
  plugin: PluginClient,
  body: () => Promise<void>,
  options: { reattached?: boolean } = {},
): Promise<number> {
  try {
    await body();
  } catch (err) {
    await plugin.kill();
    throw err;
  }
  return await killGracefully(plugin, options);
}

/** Double, then a lock-step bidirectional Stream (one request, one answer). */
export async function doubleAndStream(test: ServiceClient<typeof Test>): Promise<void> {
  assert.equal((await test.double({ input: 21 }, { timeoutMs: 10_000 })).output, 42);
  const requests = new AsyncQueue<{ input: number }>();
  const responses = test.stream(requests, { timeoutMs: 10_000 })[Symbol.asyncIterator]();
  const outputs: number[] = [];
  for (let i = 1; i <= 5; i++) {
    requests.push({ input: i });
    const next = await responses.next();
    assert.ok(!next.done, `stream ended before the answer to ${i}`);
    outputs.push(next.value.output);
  }
  requests.end();
  assert.ok((await responses.next()).done, "the stream ends after the client closes");
  assert.deepEqual(outputs, [2, 4, 6, 8, 10]);
}

/** The host serves PingPong through its broker; the plugin dials it in Bidirectional. */
export async function hostServesPingPong(
  plugin: PluginClient,
  test: ServiceClient<typeof Test>,
): Promise<void> {
  let pings = 0;
  const { id } = await plugin.broker.serve((s) =>
    s.add(PingPong, {
      ping: () => {
        pings++;
        return { msg: "pong" };
      },
    })
  );
  const { id: returned } = await test.bidirectional({ id }, { timeoutMs: 10_000 });
  assert.equal(returned, id, "Bidirectional returns the broker id");
  assert.equal(pings, 1, "the plugin called the host's PingPong once");
}

/** PrintKV foo=bar and foo=12; the plugin's log lines come back as records. */
export async function printKvRecords(
  test: ServiceClient<typeof Test>,
  sinks: Sinks,
): Promise<PluginLogRecord[]> {
  await test.printKV({ key: "foo", value: { case: "valueString", value: "bar" } });
  await test.printKV({ key: "foo", value: { case: "valueInt", value: 12 } });
  const found = () => sinks.records.filter((r) => r.message === "PrintKV called");
  await eventually("two PrintKV log records", () => found().length >= 2);
  const [a, b] = found();
  assert.equal(a.level, "info");
  assert.equal(b.level, "info");
  assert.equal(a.fields.foo, "bar");
  assert.equal(b.fields.foo, 12);
  return [a, b];
}

/** PrintStdio; the bytes arrive byte-exact on syncStdout/syncStderr through GRPCStdio. */
export async function stdioRoundTrip(
  test: ServiceClient<typeof Test>,
  sinks: Sinks,
): Promise<void> {
  const encoder = new TextEncoder();
  await test.printStdio({ stdout: encoder.encode(STDIO_OUT), stderr: encoder.encode(STDIO_ERR) });
  await eventually(
    "the PrintStdio bytes on syncStdout and syncStderr",
    () => sinks.stdout.length >= STDIO_OUT.length && sinks.stderr.length >= STDIO_ERR.length,
  );
  assert.equal(sinks.stdout, STDIO_OUT);
  assert.equal(sinks.stderr, STDIO_ERR);
}

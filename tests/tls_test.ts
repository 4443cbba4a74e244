// Mutual TLS (AutoMTLS) and manual TLS between real host and plugin processes (docs/protocol.md
// §5): the certificates both sides use, what the plugin refuses and what the host refuses,
// and what a user sees at each layer (raw TLS, grpc-js, plugwire's API).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { PluginError, type ReattachConfig, startPlugin, type TlsConfig } from "../host.ts";
import { KV } from "../gen/kv/kv_pb.ts";
import { Health } from "../gen/core/grpc/health/v1/health_pb.ts";
import { createServiceClient } from "../internal/grpc_client.ts";
import type { Network } from "../internal/handshake.ts";
import {
  type Certificate,
  decodeHandshakeCert,
  generateCertificate,
  pemToDer,
} from "../internal/mtls.ts";
import { grpcTarget } from "../internal/transport.ts";
import {
  denoCommand,
  HANDSHAKE,
  helperPlugin,
  processesWithMark,
  TEST_MARK,
  testNoLeftovers,
  testRoot,
} from "./_util.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
const NETWORKS = ["unix", "tcp"] as const;

// ---- 1. AutoMTLS: the certificates on both sides ----------------------------------------------

for (const network of NETWORKS) {
  Deno.test(`AutoMTLS over ${network}: both certificates have go-plugin's profile, and are the ones in use`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("expose-env", { HELPER_NETWORK: network }),
      plugins: { kv: KV },
      autoMtls: true,
    });
    const config = plugin.reattachConfig();
    assert.equal(config.network, network);
    assert.ok(config.tls, "an AutoMTLS client keeps its TLS configuration");

    // The plugin's certificate, as it arrived in handshake field 6.
    const pluginCert = new X509Certificate(config.tls.ca);
    assertAutoMtlsProfile(pluginCert);
    await assertOpensslProfile(config.tls.ca);

    // The host's certificate, as the plugin received it in PLUGIN_CLIENT_CERT.
    const kv = plugin.dispense("kv");
    const received = decode((await kv.get({ key: "env:PLUGIN_CLIENT_CERT" })).value);
    assert.equal(received, config.tls.cert);
    const hostCert = new X509Certificate(received);
    assertAutoMtlsProfile(hostCert);
    await assertOpensslProfile(received);
    assert.notEqual(hostCert.fingerprint256, pluginCert.fingerprint256);
    assert.notEqual(hostCert.serialNumber, pluginCert.serialNumber);
    // The key the host kept is the key of the certificate it sent.
    assert.equal(hostCert.checkPrivateKey(createPrivateKey(config.tls.key)), true);

    // On the wire: the plugin presents exactly the field-6 certificate, ALPN h2, TLS 1.3, and
    // accepts the host's certificate.
    const probe = await rawProbe(network, config.address, config.tls.ca, {
      certPem: config.tls.cert,
      keyPem: config.tls.key,
    });
    assert.equal(probe.error, undefined);
    assert.equal(probe.authorized, true);
    assert.equal(probe.alpn, "h2");
    assert.equal(probe.protocol, "TLSv1.3");
    assert.equal(probe.peerFingerprint, pluginCert.fingerprint256);
    assert.ok(probe.serverBytes > 0, "the plugin's HTTP/2 server answered");

    await kv.put({ key: "a", value: encode("1") });
    assert.equal(decode((await kv.get({ key: "a" })).value), "1");
  });
}

function assertAutoMtlsProfile(x: X509Certificate): void {
  assert.equal(x.publicKey.asymmetricKeyType, "ec");
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "secp521r1");
  assert.deepEqual(x.subject.split("\n"), ["O=HashiCorp", "CN=localhost"]);
  assert.equal(x.issuer, x.subject);
  assert.equal(x.subjectAltName, "DNS:localhost");
  assert.equal(x.ca, true);
  assert.equal(x.checkHost("localhost"), "localhost");
  assert.equal(x.checkIP("127.0.0.1"), undefined, "no IP SAN, as go-plugin");
  // NotBefore = now - 30 s, NotAfter = now + 262980 h; times are whole seconds.
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  assert.ok(
    Math.abs(to - from - (262_980 * HOUR_MS + 30_000)) <= 1000,
    `${x.validFrom} .. ${x.validTo}`,
  );
  assert.ok(from <= Date.now() - 29_000 && from >= Date.now() - 5 * 60_000, x.validFrom);
}

async function assertOpensslProfile(pem: string): Promise<void> {
  const text = await openssl(["x509", "-noout", "-text"], pem);
  if (text === undefined) return console.log("openssl not on PATH: text profile not checked");
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA512/);
  assert.match(text, /NIST CURVE: P-521|secp521r1/);
  assert.match(text, /Subject: O ?= ?HashiCorp, CN ?= ?localhost/);
  assert.match(
    text,
    /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement, Certificate Sign\n/,
  );
  assert.match(
    text,
    /X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication, TLS Web Server Authentication\n/,
  );
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
  assert.match(text, /X509v3 Subject Alternative Name: *\n\s+DNS:localhost\n/);
}

// ---- 2. What a running AutoMTLS plugin refuses ----------------------------------------------

for (const network of NETWORKS) {
  Deno.test(`AutoMTLS over ${network}: the plugin refuses clients without the host's certificate`, async () => {
    await using plugin = await startPlugin({
      ...helperPlugin("serve", { HELPER_NETWORK: network }),
      plugins: { kv: KV },
      autoMtls: true,
    });
    const config = plugin.reattachConfig();
    const good = config.tls!;
    const stranger = await generateCertificate();
    const expired = await generateCertificate({
      notBefore: new Date(Date.now() - 2 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    });
    assert.ok(Date.parse(new X509Certificate(expired.certPem).validTo) < Date.now());

    const cases: Array<{ name: string; own?: Pick<Certificate, "certPem" | "keyPem"> }> = [
      { name: "(a) no client certificate" },
      { name: "(b) another self-signed certificate", own: stranger },
      { name: "(c) an expired certificate", own: expired },
    ];
    for (const { name, own } of cases) {
      // Raw TLS: TLS 1.3 completes the client's side of the handshake before the server has
      // checked the client certificate, so the refusal shows up afterwards: an alert, a reset
      // or silence, and never a byte of HTTP/2 from the plugin.
      const raw = await rawProbe(network, config.address, good.ca, own);
      console.log(
        `${network} ${name}: raw TLS: ${raw.error ?? "no error, connection closed or silent"}`,
      );
      assert.equal(raw.serverBytes, 0, `${name}: the plugin's HTTP/2 server answered`);

      // grpc-js, as any gRPC client would connect.
      const status = await grpcJsHealthCheck(network, config.address, good.ca, own);
      console.log(`${network} ${name}: grpc-js: ${status}`);
      assert.match(status, /^14 UNAVAILABLE: No connection established/);
    }

    // plugwire's API: a host reattaching with the wrong TLS settings.
    const wrongTls: Array<{ name: string; tls?: TlsConfig }> = [
      { name: "(a) no TLS at all (go-plugin's reattach config has no certificates)" },
      {
        name: "(b) another self-signed certificate",
        tls: { ...good, cert: stranger.certPem, key: stranger.keyPem },
      },
      {
        name: "(c) an expired certificate",
        tls: { ...good, cert: expired.certPem, key: expired.keyPem },
      },
    ];
    for (const { name, tls } of wrongTls) {
      const reattach: ReattachConfig = { ...config, tls };
      if (!tls) delete reattach.tls;
      // Do not let a failed reattach remove the socket directory of the running plugin.
      delete reattach.socketDir;
      const err = await startPlugin({
        reattach,
        handshake: HANDSHAKE,
        plugins: { kv: KV },
        startTimeoutMs: 1500,
        logger: () => {},
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof PluginError, String(err));
      console.log(
        `${network} ${name}: plugwire: [${err.code}] ${err.message}; cause: ` +
          `[${(err.cause as PluginError).code}] ${(err.cause as Error).message}`,
      );
      assert.equal(err.code, "process-not-found");
      assert.equal(err.message, "reattachment process not found");
      assert.ok(err.cause instanceof PluginError);
      assert.equal(err.cause.code, "connection-failed");
      assert.match(
        err.cause.message,
        new RegExp(`^Cannot connect to plugin "pid ${config.pid}" at ${network}:`),
      );
    }

    // None of that hurt the plugin: the real host still talks to it.
    await plugin.ping();
    await plugin.dispense("kv").put({ key: "still", value: encode("here") });
  });
}

Deno.test({
  name:
    "BUG: a connection-failed error names the TLS reason (here: the certificate lacks localhost)",
  // Regression (fixed): connect() in internal/connection.ts (then internal/client.ts) reports only grpc-js's waitForReady text "Failed to
  // connect before the deadline" and drops the channel's last error, which a plain call shows:
  // "Hostname/IP does not match certificate's altnames: Host: localhost. is not in the cert's
  // altnames: DNS:example.com". Fix: see the report (probe once with a call on failure).
  fn: async () => {
    const { host, server } = await exampleComPair();
    const err = await startPlugin({
      ...helperPlugin("manual-tls", manualTlsEnv(server, host, "unix")),
      plugins: { kv: KV },
      tls: { cert: host.certPem, key: host.keyPem, ca: server.certPem },
      startTimeoutMs: 1500,
    }).then(() => undefined, (e) => e);
    assert.ok(err instanceof PluginError);
    assert.equal(err.code, "connection-failed");
    assert.match(err.message, /altnames|localhost/);
  },
});

Deno.test({
  name: "BUG: a manual-TLS plugin serves no client whose certificate has expired",
  // Regression (fixed): Deno 2.9.6's node:tls server (under grpc-js) checks the client certificate's chain
  // but not its validity period: an expired (or not yet valid) client certificate it trusts is
  // accepted, and the plugin serves it (a Go plugin refuses the handshake). With AutoMTLS only
  // a fresh certificate is ever trusted, so this matters for manual TLS. Workaround: see the
  // report (a server interceptor checking call.getAuthContext().sslPeerCertificate dates).
  fn: async () => {
    const server = await generateCertificate();
    const expiredHost = await generateCertificate({
      notBefore: new Date(Date.now() - 2 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    });
    const plugin = await startPlugin({
      ...helperPlugin("manual-tls", manualTlsEnv(server, expiredHost, "tcp")),
      plugins: { kv: KV },
      tls: { cert: expiredHost.certPem, key: expiredHost.keyPem, ca: server.certPem },
      startTimeoutMs: 1500,
      killGraceMs: 500,
    }).catch((err) => {
      // Refusing the connection outright is fine too.
      assert.ok(err instanceof PluginError, String(err));
      return undefined;
    });
    if (!plugin) return;
    try {
      await assert.rejects(
        plugin.dispense("kv").put({ key: "a", value: encode("1") }),
        "the plugin served a client with an expired certificate",
      );
    } finally {
      await plugin.kill();
    }
  },
});

// ---- 2d. What the host refuses -----------------------------------------------------------------

async function exampleComPair(): Promise<{ host: Certificate; server: Certificate }> {
  const [host, server] = await Promise.all([
    generateCertificate(),
    generateCertificate({ dnsNames: ["example.com"], commonName: "example.com" }),
  ]);
  return { host, server };
}

function manualTlsEnv(own: Certificate, trusts: Certificate, network: Network) {
  return {
    HELPER_NETWORK: network,
    HELPER_TLS_CERT: own.certPem,
    HELPER_TLS_KEY: own.keyPem,
    HELPER_TLS_CA: trusts.certPem,
  };
}

for (const network of NETWORKS) {
  Deno.test(`host over ${network}: refuses a plugin whose certificate does not name localhost`, async () => {
    const { host, server } = await exampleComPair();
    assert.equal(new X509Certificate(server.certPem).subjectAltName, "DNS:example.com");
    const before = processesWithMark().length;
    const started = Date.now();
    const err = await startPlugin({
      ...helperPlugin("manual-tls", manualTlsEnv(server, host, network)),
      plugins: { kv: KV },
      tls: { cert: host.certPem, key: host.keyPem, ca: server.certPem },
      startTimeoutMs: 1500,
    }).then(() => undefined, (e) => e);
    assert.ok(err instanceof PluginError, String(err));
    console.log(
      `${network} host vs DNS:example.com (${Date.now() - started} ms): ` +
        `[${err.code}] ${err.message}`,
    );
    assert.equal(err.code, "connection-failed");
    assert.match(
      err.message,
      new RegExp(`^Cannot connect to plugin "deno" at ${network}:.* over mutual TLS: `),
    );
    // A failed start kills the plugin it started.
    assert.equal(processesWithMark().length, before);

    // The raw reason, as grpc-js states it.
    await using plugin = await startPlugin({
      ...helperPlugin("manual-tls", manualTlsEnv(server, host, network)),
      plugins: { kv: KV },
      // The same certificates work once the host expects the name the certificate carries.
      tls: { cert: host.certPem, key: host.keyPem, ca: server.certPem, serverName: "example.com" },
    });
    await plugin.dispense("kv").put({ key: "a", value: encode("1") });
    const status = await grpcJsHealthCheck(network, plugin.address, server.certPem, host);
    console.log(`${network} grpc-js vs DNS:example.com: ${status}`);
    assert.match(status, /ERR_TLS_CERT_ALTNAME_INVALID|altnames/);
  });
}

Deno.test("host: refuses a plugin whose pinned certificate has expired", async () => {
  const host = await generateCertificate();
  const expired = await generateCertificate({
    notBefore: new Date(Date.now() - 2 * DAY_MS),
    notAfter: new Date(Date.now() - DAY_MS),
  });
  const err = await startPlugin({
    ...helperPlugin("manual-tls", manualTlsEnv(expired, host, "tcp")),
    plugins: { kv: KV },
    tls: { cert: host.certPem, key: host.keyPem, ca: expired.certPem },
    startTimeoutMs: 1500,
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof PluginError, String(err));
  console.log(`host vs expired plugin certificate: [${err.code}] ${err.message}`);
  assert.equal(err.code, "connection-failed");
});

// ---- 3. AutoMTLS asked, no certificate returned: covered by host_errors_test.ts -------------

// ---- 4. Manual TLS --------------------------------------------------------------------------

for (const network of NETWORKS) {
  Deno.test(`manual TLS over ${network}: plugin TLS provider and host tls option`, async () => {
    const [host, server] = await Promise.all([generateCertificate(), generateCertificate()]);
    const hostTls: TlsConfig = { cert: host.certPem, key: host.keyPem, ca: server.certPem };
    await using plugin = await startPlugin({
      ...helperPlugin("manual-tls", manualTlsEnv(server, host, network)),
      plugins: { kv: KV },
      tls: hostTls,
    });
    assert.equal(plugin.network, network);
    const kv = plugin.dispense("kv");
    await kv.put({ key: "a", value: encode("1") });
    assert.equal(decode((await kv.get({ key: "a" })).value), "1");
    // The client keeps (and would hand over) exactly the configuration it was given.
    assert.deepEqual(plugin.reattachConfig().tls, hostTls);
    // On the wire the plugin presents the provider's certificate.
    const probe = await rawProbe(network, plugin.address, server.certPem, host);
    assert.equal(probe.error, undefined);
    assert.equal(probe.peerFingerprint, new X509Certificate(server.certPem).fingerprint256);
    assert.ok(probe.serverBytes > 0);
    // Without its client certificate, nothing gets through.
    const refused = await rawProbe(network, plugin.address, server.certPem, undefined);
    assert.equal(refused.serverBytes, 0);

    // A host without TLS, or pinning another certificate, cannot connect.
    for (
      const [name, tls] of [
        ["plaintext", undefined],
        ["wrong ca", { ...hostTls, ca: host.certPem }],
      ] as const
    ) {
      const err = await startPlugin({
        ...helperPlugin("manual-tls", manualTlsEnv(server, host, network)),
        plugins: { kv: KV },
        tls,
        startTimeoutMs: 1500,
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof PluginError, `${name}: ${err}`);
      console.log(`manual TLS ${network}, host ${name}: [${err.code}] ${err.message}`);
      assert.equal(err.code, "connection-failed");
    }
  });
}

Deno.test("manual TLS: the handshake line carries no certificate (with AutoMTLS too it is refused)", async () => {
  const [host, server] = await Promise.all([generateCertificate(), generateCertificate()]);
  // A TLS provider: field 6 stays empty. (A provider together with the host's
  // PLUGIN_CLIENT_CERT is refused: see plugin_side_test.ts, "tls-and-automtls".)
  const manual = await rawHandshake("manual-tls", manualTlsEnv(server, host, "unix"));
  assert.equal(manual.length, 6, manual.join("|"));
  assert.equal(manual[5], "");
  const withoutClientCert = await rawHandshake("manual-tls", manualTlsEnv(server, host, "tcp"));
  assert.equal(withoutClientCert[5], "");
  assert.equal(withoutClientCert[2], "tcp");

  // For contrast, AutoMTLS: field 6 is the plugin's DER, unpadded standard base64.
  const auto = await rawHandshake("serve", { PLUGIN_CLIENT_CERT: host.certPem });
  assert.match(auto[5], /^[A-Za-z0-9+/]+$/);
  const der = decodeHandshakeCert(auto[5]);
  assert.equal(new X509Certificate(der).subjectAltName, "DNS:localhost");
  assert.notDeepEqual(der, pemToDer(host.certPem));
});

/**
 * Starts the helper plugin by hand, the way a host would, and returns its handshake line's
 * fields; then stops it with SIGTERM (which the plugin handles by removing its socket).
 */
async function rawHandshake(mode: string, env: Record<string, string>): Promise<string[]> {
  const socketDir = await Deno.makeTempDir({ dir: testRoot(), prefix: "raw-" });
  const [cmd, ...args] = denoCommand("tests/fixtures/helper_plugin.ts");
  const child = new Deno.Command(cmd, {
    args,
    env: {
      PLUGWIRE_TEST_MARK: TEST_MARK,
      HELPER_MODE: mode,
      [HANDSHAKE.magicCookieKey]: HANDSHAKE.magicCookieValue,
      PLUGIN_PROTOCOL_VERSIONS: String(HANDSHAKE.protocolVersion),
      PLUGIN_MIN_PORT: "10000",
      PLUGIN_MAX_PORT: "25000",
      PLUGIN_UNIX_SOCKET_DIR: socketDir,
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decode(value);
    }
    reader.releaseLock();
    return text.split("\n")[0].split("|");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(socketDir, { recursive: true });
  }
}

// ---- 7. Measurements ------------------------------------------------------------------------

Deno.test("measure: generateCertificate() and startPlugin() with and without AutoMTLS", async () => {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const certTimes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    await generateCertificate();
    certTimes.push(performance.now() - t0);
  }
  const startTimes: Record<string, number[]> = { plaintext: [], autoMtls: [] };
  for (let i = 0; i < 10; i++) {
    for (const autoMtls of [false, true]) {
      const t0 = performance.now();
      const plugin = await startPlugin({ ...helperPlugin("serve"), plugins: { kv: KV }, autoMtls });
      startTimes[autoMtls ? "autoMtls" : "plaintext"].push(performance.now() - t0);
      await plugin.kill();
    }
  }
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  console.log(
    `measure: generateCertificate() median over 20 runs: ${ms(median(certTimes))} ` +
      `(min ${ms(Math.min(...certTimes))}, max ${ms(Math.max(...certTimes))})`,
  );
  for (const [name, xs] of Object.entries(startTimes)) {
    console.log(
      `measure: startPlugin(helperPlugin("serve")) ${name} median over 10 runs: ` +
        `${ms(median(xs))} (min ${ms(Math.min(...xs))}, max ${ms(Math.max(...xs))})`,
    );
  }
});

// ---- helpers --------------------------------------------------------------------------------

interface ProbeResult {
  authorized: boolean;
  alpn: string | false | null;
  protocol: string | null;
  peerFingerprint?: string;
  /** Bytes the server sent after the handshake (its HTTP/2 SETTINGS when it accepted us). */
  serverBytes: number;
  error?: string;
}

/**
 * Opens a TLS connection the way the host does (trusting only `ca`, server name localhost,
 * ALPN h2), presenting `own` if given, sends the HTTP/2 preface and an empty SETTINGS frame,
 * and records what happens within 1.5 s.
 */
function rawProbe(
  network: Network,
  address: string,
  ca: string,
  own: Pick<Certificate, "certPem" | "keyPem"> | undefined,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const result: ProbeResult = { authorized: false, alpn: false, protocol: null, serverBytes: 0 };
    const where = network === "unix"
      ? { path: address }
      : { host: address.split(":")[0], port: Number(address.split(":")[1]) };
    const socket = tls.connect({
      ...where,
      servername: "localhost",
      ca: [ca],
      cert: own?.certPem,
      key: own?.keyPem,
      ALPNProtocols: ["h2"],
    });
    const timer = setTimeout(() => socket.destroy(), 1500);
    socket.on("secureConnect", () => {
      result.authorized = socket.authorized;
      result.alpn = socket.alpnProtocol;
      result.protocol = socket.getProtocol();
      result.peerFingerprint = socket.getPeerCertificate().fingerprint256;
      socket.write(Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]));
    });
    socket.on("data", (chunk: Buffer) => {
      result.serverBytes += chunk.length;
      socket.destroy();
    });
    socket.on("error", (error: Error & { code?: string }) => {
      result.error ??= `${error.message}${error.code ? ` [${error.code}]` : ""}`;
      socket.destroy();
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}

/** One Health check through a grpc-js client with these credentials: "OK" or the status text. */
async function grpcJsHealthCheck(
  network: Network,
  address: string,
  ca: string,
  own: Pick<Certificate, "certPem" | "keyPem"> | undefined,
): Promise<string> {
  const credentials = own
    ? grpc.credentials.createSsl(
      Buffer.from(ca),
      Buffer.from(own.keyPem),
      Buffer.from(own.certPem),
    )
    : grpc.credentials.createSsl(Buffer.from(ca));
  const client = new grpc.Client(grpcTarget(network, address), credentials, {
    "grpc.ssl_target_name_override": "localhost",
    "grpc.default_authority": "localhost",
  });
  try {
    await createServiceClient(Health, client).check({ service: "plugin" }, { timeoutMs: 3000 });
    return "OK";
  } catch (err) {
    const e = err as { code?: number; message: string };
    // Drop grpc-js's timestamp and empty resolution note, which vary.
    return `${e.code} ${e.message.replace(/^RpcError: /, "")}`
      .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, "").replace(/\. Resolution note: ?$/, "");
  } finally {
    client.close();
  }
}

/** Runs openssl with `input` on stdin; undefined when openssl is not installed. */
async function openssl(args: string[], input: string): Promise<string | undefined> {
  let child;
  try {
    child = new Deno.Command("openssl", { args, stdin: "piped", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const writer = child.stdin.getWriter();
  await writer.write(encode(input));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, `openssl ${args.join(" ")}: ${decode(out.stderr)}`);
  return decode(out.stdout);
}

testNoLeftovers();

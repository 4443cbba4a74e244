// Tests for internal/mtls.ts: the certificate is checked by parsing it with independent code
// (node:crypto, and openssl when present), then used for a real mutual-TLS round trip.
import assert from "node:assert/strict";
import { createPrivateKey, verify, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate as AsnCertificate } from "@peculiar/asn1-x509";
import {
  type Certificate,
  decodeHandshakeCert,
  derToPem,
  encodeHandshakeCert,
  generateCertificate,
  pemToDer,
} from "../internal/mtls.ts";

const HOUR_MS = 60 * 60 * 1000;

/** True if the certificate's signature verifies under its own public key (self-signed). */
function selfSignatureValid(der: Uint8Array): boolean {
  // X509Certificate.verify() in Deno 2.9.6 throws "Unsupported EC curve for X509 verification"
  // for P-521, so check the signature over the TBS bytes with crypto.verify instead.
  const x = new X509Certificate(der);
  const parsed = AsnConvert.parse(der, AsnCertificate);
  const tbs = new Uint8Array(parsed.tbsCertificateRaw!);
  return verify("sha512", tbs, x.publicKey, new Uint8Array(parsed.signatureValue));
}

Deno.test("generateCertificate: the go-plugin AutoMTLS profile, parsed by node:crypto", async () => {
  const before = Date.now();
  const cert = await generateCertificate();
  const after = Date.now();
  const x = new X509Certificate(cert.certPem);

  assert.deepEqual(new Uint8Array(x.raw), cert.der);
  assert.deepEqual(x.subject.split("\n"), ["O=HashiCorp", "CN=localhost"]);
  assert.equal(x.issuer, x.subject);
  assert.equal(x.subjectAltName, "DNS:localhost");
  assert.equal(x.ca, true);
  assert.deepEqual(x.keyUsage, [
    "DigitalSignature",
    "KeyEncipherment",
    "KeyAgreement",
    "KeyCertSign",
  ]);
  assert.equal(x.publicKey.asymmetricKeyType, "ec");
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "secp521r1");
  assert.equal(x.checkIssued(x), true);
  assert.equal(selfSignatureValid(cert.der), true);

  // Times are encoded to the second (fraction truncated), hence the 1 s of slack below.
  const validFrom = Date.parse(x.validFrom);
  const validTo = Date.parse(x.validTo);
  assert.ok(validFrom >= before - 30_000 - 1000 && validFrom <= after - 30_000, x.validFrom);
  assert.ok(validTo >= before + 262_980 * HOUR_MS - 1000 && validTo <= after + 262_980 * HOUR_MS);

  // The serial is positive (DER INTEGER without a sign bit) and random.
  const other = new X509Certificate((await generateCertificate()).certPem);
  assert.match(x.serialNumber, /^[0-9A-F]+$/);
  assert.notEqual(x.serialNumber, other.serialNumber);
  assert.ok(BigInt("0x" + x.serialNumber) < 1n << 128n);

  // The key PEM belongs to the certificate's public key.
  assert.match(cert.keyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
  assert.equal(x.checkPrivateKey(createPrivateKey(cert.keyPem)), true);
});

Deno.test("generateCertificate: DER that @peculiar/asn1-x509 reads and writes back byte for byte", async () => {
  for (
    const options of [
      {},
      { curve: "P-384" as const, dnsNames: [], commonName: "plugin-1" },
      {
        notBefore: new Date("2049-12-31T23:59:59.999Z"),
        notAfter: new Date("2050-01-01T00:00:00Z"),
      },
      { notBefore: new Date("1949-12-31T23:59:59Z"), dnsNames: ["localhost", "a.example"] },
    ]
  ) {
    const cert = await generateCertificate(options);
    const parsed = AsnConvert.parse(cert.der, AsnCertificate);
    // DER has one encoding per value: a second writer reproducing every byte means both agree.
    assert.deepEqual(new Uint8Array(AsnConvert.serialize(parsed)), cert.der);
    const tbs = parsed.tbsCertificate;
    assert.equal(tbs.version, 2);
    const ids = [...tbs.extensions!].map((e) => `${e.extnID}${e.critical ? "!" : ""}`);
    assert.deepEqual(ids, [
      "2.5.29.15!",
      "2.5.29.37",
      "2.5.29.19!",
      "2.5.29.14",
      ...(options.dnsNames?.length === 0 ? [] : ["2.5.29.17"]),
    ]);
    const skid = new Uint8Array(
      await crypto.subtle.digest("SHA-256", tbs.subjectPublicKeyInfo.subjectPublicKey),
    ).slice(0, 20);
    const skidExtension = new Uint8Array(tbs.extensions![3].extnValue.buffer);
    assert.deepEqual(skidExtension, Uint8Array.of(0x04, 20, ...skid));
    const x = new X509Certificate(cert.der);
    assert.equal(x.subject.split("\n")[1], `CN=${options.commonName ?? "localhost"}`);
    assert.equal(
      x.subjectAltName,
      options.dnsNames?.length === 0
        ? undefined
        : (options.dnsNames ?? ["localhost"]).map((n) => `DNS:${n}`).join(", "),
    );
    assert.equal(
      parsed.signatureAlgorithm.algorithm,
      options.curve === "P-384" ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.4",
    );
    if (options.notBefore) {
      const before = tbs.validity.notBefore;
      const after = tbs.validity.notAfter;
      const year = options.notBefore.getUTCFullYear();
      assert.equal(before.utcTime !== undefined, year >= 1950 && year < 2050, "UTCTime 1950-2049");
      assert.equal(
        before.getTime().getTime(),
        Math.floor(options.notBefore.getTime() / 1000) * 1000,
      );
      if (options.notAfter) assert.ok(after.generalTime, "GeneralizedTime from 2050");
    }
  }
});

Deno.test("generateCertificate: a flipped signature bit no longer verifies", async () => {
  const der = (await generateCertificate()).der.slice();
  der[der.length - 1] ^= 1;
  assert.equal(selfSignatureValid(der), false);
});

Deno.test("generateCertificate: openssl sees the same profile as go-plugin's", async () => {
  const cert = await generateCertificate();
  const text = await openssl(["x509", "-noout", "-text"], cert.certPem);
  assert.ok(text !== undefined, "openssl must be on PATH for this check");
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA512/);
  assert.match(text, /Issuer: O ?= ?HashiCorp, CN ?= ?localhost/);
  assert.match(text, /Subject: O ?= ?HashiCorp, CN ?= ?localhost/);
  assert.match(text, /NIST CURVE: P-521|secp521r1/);
  assert.match(
    text,
    /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement, Certificate Sign\n/,
  );
  // Go writes EKUs in template order, and go-plugin lists ClientAuth before ServerAuth.
  assert.match(
    text,
    /X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication, TLS Web Server Authentication\n/,
  );
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
  assert.match(text, /X509v3 Subject Key Identifier: *\n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
  assert.match(text, /X509v3 Subject Alternative Name: *\n\s+DNS:localhost\n/);
  assert.doesNotMatch(text, /Authority Key Identifier|pathlen/);
  // notAfter lies past 2049, where RFC 5280 (and Go) switch to GeneralizedTime.
  const asn1 = await openssl(["asn1parse", "-i"], cert.certPem);
  assert.match(asn1!, /UTCTIME +:\d{12}Z\n[^\n]*GENERALIZEDTIME +:\d{14}Z\n/);
  // openssl checks the self-signature while building the (one-certificate) chain.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, cert.certPem);
    const verified = await openssl(["verify", "-CAfile", `${dir}/cert.pem`, `${dir}/cert.pem`], "");
    assert.match(verified!, /cert\.pem: OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("handshake field 6: unpadded base64 out, padded or unpadded in", async () => {
  const { der } = await generateCertificate();
  const text = encodeHandshakeCert(der);
  assert.doesNotMatch(text, /[=\s]/);
  assert.deepEqual(decodeHandshakeCert(text), der);
  const padded = text + "=".repeat((4 - text.length % 4) % 4);
  assert.deepEqual(decodeHandshakeCert(padded), der);

  // Every padding case: 0, 1 and 2 "=" characters.
  for (const bytes of [[0x30, 1, 2], [0x30, 1, 2, 3], [0x30, 1, 2, 3, 4]]) {
    const raw = new Uint8Array(bytes);
    const encoded = encodeHandshakeCert(raw);
    assert.equal(encoded, btoa(String.fromCharCode(...raw)).replace(/=+$/, ""));
    assert.deepEqual(decodeHandshakeCert(encoded), raw);
    assert.deepEqual(decodeHandshakeCert(btoa(String.fromCharCode(...raw))), raw);
  }

  for (
    const bad of ["", "not base64!", "MIIBC", "MIIB=", "MIIB\n", "MI-_", "MA==MA==", "aGVsbG8"]
  ) {
    assert.throws(() => decodeHandshakeCert(bad), TypeError, JSON.stringify(bad));
  }
});

Deno.test("PEM: derToPem and pemToDer round trip; pemToDer takes the first block", async () => {
  const a = await generateCertificate();
  const b = await generateCertificate();
  assert.equal(derToPem(a.der), a.certPem);
  assert.ok(a.certPem.endsWith("-----END CERTIFICATE-----\n"));
  const body = a.certPem.split("\n").slice(1, -2);
  assert.ok(body.slice(0, -1).every((line) => line.length === 64));
  assert.ok(body.at(-1)!.length <= 64);
  assert.deepEqual(pemToDer(a.certPem), a.der);
  assert.deepEqual(pemToDer(`junk\n${a.keyPem}${a.certPem}${b.certPem}`), a.der);
  assert.deepEqual(pemToDer(a.certPem.replaceAll("\n", "\r\n")), a.der);
  assert.throws(() => pemToDer(a.keyPem), TypeError);
  assert.throws(() => pemToDer(""), TypeError);
  assert.throws(
    () => pemToDer("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"),
    TypeError,
  );
});

Deno.test("mutual TLS over loopback with node:tls: accepted, and refused without the right cert", async () => {
  const [server, client, stranger] = await Promise.all([
    generateCertificate(),
    generateCertificate(),
    generateCertificate(),
  ]);
  const tlsServer = await startEchoServer(server, client);
  try {
    // The accepted case: both sides verify the peer, ALPN h2 agreed, bytes echo.
    const ok = await dial(tlsServer.port, server, client, "ping");
    assert.equal(ok.error, undefined);
    assert.equal(ok.authorized, true);
    assert.equal(ok.alpn, "h2");
    assert.equal(ok.echoed, "ping");
    const accepted = await tlsServer.nextSecure();
    assert.equal(accepted.authorized, true);
    assert.equal(accepted.alpn, "h2");
    assert.equal(accepted.peerFingerprint, new X509Certificate(client.certPem).fingerprint256);

    // A client presenting another self-signed certificate: the server refuses it.
    // (Deno 2.9.6 reports this refusal to the server as "socket hang up" and the client just
    // sees the connection close, so only the fact of the refusal is asserted.)
    const wrong = await dial(tlsServer.port, server, stranger, "ping");
    assert.ok(await tlsServer.nextRefusal() instanceof Error);
    assert.equal(wrong.echoed, "");

    // A client presenting no certificate at all: refused too.
    const none = await dial(tlsServer.port, server, undefined, "ping");
    assert.match(String(await tlsServer.nextRefusal()), /certificate/i);
    assert.equal(none.echoed, "");

    // The client side refuses a server whose certificate it was not told to trust.
    const distrust = await dial(tlsServer.port, stranger, client, "ping");
    assert.ok(distrust.error, "client accepted an untrusted server certificate");
    assert.equal(distrust.echoed, "");
    assert.match(String(await tlsServer.nextRefusal()), /alert/i); // the client's alert

    // Only the first connection ever reached the server's connection handler.
    assert.equal(tlsServer.acceptedCount(), 1);
  } finally {
    await tlsServer.close();
  }
});

// ---- helpers --------------------------------------------------------------------------------

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
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const decoded = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return decoded;
}

interface Accepted {
  authorized: boolean;
  alpn: string | false | null;
  peerFingerprint: string;
}

/**
 * An mTLS echo server configured the way go-plugin's AutoMTLS server is: it trusts exactly
 * `trusted`, requires a client certificate, TLS 1.2+, ALPN h2. Accepted handshakes and
 * refusals are queued so the test can await each one.
 */
async function startEchoServer(own: Certificate, trusted: Certificate) {
  const secure = queue<Accepted>();
  const refusals = queue<Error>();
  const sockets = new Set<tls.TLSSocket>();
  let accepted = 0;
  const server = tls.createServer({
    key: own.keyPem,
    cert: own.certPem,
    ca: [trusted.certPem],
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
    minVersion: "TLSv1.2",
  }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    secure.push({
      authorized: socket.authorized,
      alpn: socket.alpnProtocol,
      peerFingerprint: socket.getPeerCertificate().fingerprint256,
    });
    socket.pipe(socket);
  });
  server.on("tlsClientError", (error) => refusals.push(error));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    nextSecure: secure.next,
    nextRefusal: refusals.next,
    acceptedCount: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface DialResult {
  authorized: boolean;
  alpn: string | false | null;
  echoed: string;
  error?: Error;
}

/**
 * Connects as the AutoMTLS client (trusting only `serverCert`, presenting `own` if given),
 * writes `message` once connected and collects what comes back until the server closes or
 * the echo is complete. Resolves (never rejects) once the socket is fully closed.
 */
function dial(
  port: number,
  serverCert: Certificate,
  own: Certificate | undefined,
  message: string,
): Promise<DialResult> {
  return new Promise((resolve) => {
    const result: DialResult = { authorized: false, alpn: false, echoed: "" };
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      key: own?.keyPem,
      cert: own?.certPem,
      ca: [serverCert.certPem],
      ALPNProtocols: ["h2"],
    });
    socket.setEncoding("utf8");
    socket.on("secureConnect", () => {
      result.authorized = socket.authorized;
      result.alpn = socket.alpnProtocol;
      socket.write(message);
    });
    socket.on("data", (chunk: string) => {
      result.echoed += chunk;
      if (result.echoed.length >= message.length) socket.end();
    });
    socket.on("error", (error) => {
      result.error ??= error;
      socket.destroy();
    });
    socket.on("close", () => resolve(result));
  });
}

/** A tiny async queue: push() values from event handlers, await next() in the test. */
function queue<T>() {
  const items: T[] = [];
  const waiters: ((item: T) => void)[] = [];
  return {
    push(item: T) {
      const waiter = waiters.shift();
      if (waiter) waiter(item);
      else items.push(item);
    },
    next(): Promise<T> {
      const item = items.shift();
      return item !== undefined ? Promise.resolve(item) : new Promise((r) => waiters.push(r));
    },
  };
}

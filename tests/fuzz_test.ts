/**
 * Property-based tests (fast-check) of every parser that reads another process's bytes: the
 * handshake line, hclog stderr lines, `PLUGIN_CLIENT_CERT`, reattach JSON and
 * `PLUGIN_PROTOCOL_VERSIONS`. Every input either parses or gives that parser's typed error,
 * never another exception; inputs are bounded (up to 64 KiB), so a parser that hangs or goes
 * quadratic shows as a run that never ends.
 *
 * `FUZZ_RUNS` sets the number of cases per parser: `deno task fuzz` runs 100,000 each; the
 * normal suite runs 300. `FUZZ_SEED` replays a failure fast-check reported.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { PluginError } from "../host.ts";
import { parseHandshakeLine } from "../internal/handshake.ts";
import { StderrLineParser } from "../internal/hclog.ts";
import { decodeHandshakeCert, derToPem, encodeHandshakeCert } from "../internal/pem.ts";
import { parseClientCertPem } from "../internal/x509.ts";
import { parseReattachConfig } from "../internal/reattach.ts";
import { parseProtocolVersions } from "../internal/negotiate.ts";
import { generateCertificate } from "../internal/mtls.ts";
import { testNoLeftovers } from "./_util.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "300");
const SEED = Deno.env.get("FUZZ_SEED");
const params = { numRuns: RUNS, ...(SEED ? { seed: Number(SEED) } : {}) };

/** Runs a property and prints how many cases it took and how long. */
function check<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => void) {
  const started = performance.now();
  fc.assert(fc.property(arbitrary, predicate), params);
  const seconds = (performance.now() - started) / 1000;
  console.log(`fuzz ${name}: ${RUNS} cases in ${seconds.toFixed(1)} s`);
}

/** Strings of any code units, of ASCII, or made of the given pieces (near-valid inputs). */
function text(pieces: string[], maxLength = 200): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: "binary", maxLength }),
    fc.string({ unit: "grapheme-ascii", maxLength }),
    fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((a) => a.join("")),
  );
}

/** Only `PluginError`s with one of `codes` may escape; anything else fails the property. */
function typedOnly(codes: string[], run: () => unknown): void {
  try {
    run();
  } catch (err) {
    if (err instanceof PluginError && codes.includes(err.code)) return;
    throw err;
  }
}

const cert = await generateCertificate();

/** Long inputs (10 to 64 KiB), made by repeating a short random string: cheap to generate. */
const long = fc.tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 16 }), fc.nat(65_536))
  .map(([unit, size]) => unit.repeat(Math.ceil((10_000 + size % 55_537) / unit.length)));

Deno.test("fuzz: handshake lines parse or fail with a handshake error code", () => {
  const codes = [
    "unrecognized-handshake",
    "incompatible-core-version",
    "incompatible-app-version",
    "unknown-network",
    "unsupported-protocol",
    "bad-certificate",
    "broker-mux-unsupported",
  ];
  const field6 = encodeHandshakeCert(cert.der);
  const pieces = [
    "1",
    "2",
    "-1",
    "99999999999999999999",
    "|",
    "unix",
    "tcp",
    "grpc",
    "netrpc",
    "/tmp/plugin1",
    "127.0.0.1:1234",
    "true",
    "false",
    "x",
    " ",
    "\n",
    "\r",
    "\0",
    "=",
    field6,
    field6.slice(0, 80),
    "MII" + "A".repeat(60),
  ];
  const lines = fc.oneof(
    text(pieces, 400),
    fc.tuple(fc.constantFrom(...pieces), fc.constantFrom(...pieces), fc.constantFrom(...pieces))
      .map(([app, net, cert6]) => `1|${app}|${net}|/tmp/p|grpc|${cert6}|true`),
    long,
  );
  check("handshake line", fc.tuple(lines, fc.boolean()), ([line, multiplexRequested]) => {
    typedOnly(codes, () => {
      const info = parseHandshakeLine(line, {
        hostVersions: [1, 2],
        multiplexRequested,
        decodeCert: decodeHandshakeCert,
      });
      assert.ok(info.network === "unix" || info.network === "tcp");
      assert.equal(info.protocol, "grpc");
    });
  });
});

Deno.test("fuzz: hclog stderr lines always give a record, never an exception", () => {
  const pieces = [
    "{",
    "}",
    '"@level"',
    '"@message"',
    '"@module"',
    '"@timestamp"',
    ":",
    ",",
    '"info"',
    '"warn"',
    "7",
    "null",
    "[",
    "]",
    '"2026-01-02T15:04:05.123456Z"',
    "[WARN] ",
    "[ERROR]",
    "panic: ",
    "fatal error: ",
    "\\u0000",
    '"__proto__"',
    '"constructor"',
    "\r\n",
    "\n",
    "\uFFFD",
    "\uD800",
  ];
  const lines = fc.oneof(
    text(pieces, 400),
    fc.json().map((json) => json),
    fc.dictionary(
      fc.constantFrom("@level", "@message", "@module", "@timestamp", "k"),
      fc.jsonValue(),
    )
      .map((o) => JSON.stringify(o)),
    long,
  );
  const parser = new StderrLineParser();
  check("hclog line", lines, (line) => {
    const record = parser.parse(line);
    assert.ok(["trace", "debug", "info", "warn", "error"].includes(record.level), record.level);
    assert.equal(typeof record.message, "string");
    assert.equal(typeof record.raw, "string");
    assert.equal(typeof record.fields, "object");
  });
});

Deno.test("fuzz: PLUGIN_CLIENT_CERT parses or is bad-certificate", () => {
  const pem = cert.certPem;
  const body = pem.split("\n").slice(1, -2).join("\n");
  const pieces = [
    "-----BEGIN CERTIFICATE-----",
    "-----END CERTIFICATE-----",
    "\n",
    " ",
    "\r\n",
    "=",
    "==",
    "MII",
    "AAAA",
    body,
    body.slice(0, 100),
    pem,
    "junk",
    "-----BEGIN PRIVATE KEY-----",
  ];
  const inputs = fc.oneof(
    text(pieces, 4000),
    // A valid certificate with one byte of its DER changed, or bytes added or cut.
    fc.tuple(
      fc.nat(cert.der.length - 1),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: -3, max: 3 }),
    )
      .map(([at, byte, resize]) => {
        const der = new Uint8Array(Math.max(1, cert.der.length + resize));
        der.set(cert.der.subarray(0, der.length));
        der[at % der.length] = byte;
        return derToPem(der);
      }),
  );
  check("PLUGIN_CLIENT_CERT", inputs, (input) => {
    typedOnly(["bad-certificate"], () => {
      const certs = parseClientCertPem(input);
      assert.ok(certs.length >= 1);
      for (const der of certs) assert.equal(der[0], 0x30);
    });
  });
});

Deno.test("fuzz: reattach JSON parses or is misconfigured", () => {
  const good = {
    protocol: "grpc",
    protocolVersion: 1,
    network: "unix",
    address: "/tmp/p.sock",
    pid: 4242,
    tls: { cert: "c", key: "k", ca: "a" },
    socketDir: "/tmp/d",
  };
  const mutated = fc.record({
    key: fc.constantFrom(...Object.keys(good), "tls.cert", "__proto__", "extra"),
    value: fc.jsonValue(),
  }).map(({ key, value }) => {
    const copy: Record<string, unknown> = structuredClone(good);
    if (key === "tls.cert") (copy.tls as Record<string, unknown>).cert = value;
    else copy[key] = value;
    return JSON.stringify(copy);
  });
  const inputs = fc.oneof(
    text(["{", "}", '"pid"', ":", "4242", '"grpc"', ",", "[", "]", "null", "1e400"], 300),
    fc.json(),
    mutated,
  );
  check("reattach JSON", inputs, (json) => {
    typedOnly(["misconfigured"], () => {
      const config = parseReattachConfig(json);
      assert.equal(config.protocol, "grpc");
      assert.ok(Number.isSafeInteger(config.pid) && config.pid > 0);
      assert.ok(config.network === "unix" || config.network === "tcp");
    });
  });
});

Deno.test("fuzz: PLUGIN_PROTOCOL_VERSIONS gives versions and skipped entries, never throws", () => {
  const inputs = fc.oneof(
    text(["1", "2", ",", " ", "-", "+", "x", "9223372036854775808", "0", ""], 200),
    fc.array(fc.integer(), { maxLength: 20 }).map((a) => a.join(",")),
  );
  check("PLUGIN_PROTOCOL_VERSIONS", fc.option(inputs, { nil: undefined }), (value) => {
    const { versions, invalid } = parseProtocolVersions(value);
    for (const v of versions) assert.ok(Number.isInteger(v), `${v}`);
    if (value) assert.equal(versions.length + invalid.length, value.split(",").length);
    else assert.deepEqual({ versions, invalid }, { versions: [], invalid: [] });
  });
});

testNoLeftovers();

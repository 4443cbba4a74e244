// Tests for internal/handshake.ts: the handshake line a plugin prints, and how a go-plugin v1.8
// host parses it (docs/protocol.md §2.3, §2.4). Expected error texts are
// go-plugin's (client.go `Start`, `checkProtoVersion`), recorded in docs/protocol.md §2.4.
import assert from "node:assert/strict";
import { PluginError, type PluginErrorCode } from "../internal/errors.ts";
import {
  CORE_PROTOCOL_VERSION,
  formatHandshakeLine,
  type HandshakeExpectations,
  parseHandshakeLine,
} from "../internal/handshake.ts";
import {
  type Certificate,
  decodeHandshakeCert,
  encodeHandshakeCert,
  generateCertificate,
} from "../internal/mtls.ts";

/** Host expectations of go-plugin's tests: protocol version 1, no mux, no TLS. */
function expect(overrides: Partial<HandshakeExpectations> = {}): HandshakeExpectations {
  return { hostVersions: [1], decodeCert: decodeHandshakeCert, ...overrides };
}

/** Asserts that `fn` throws a PluginError with this code and exactly this message. */
function assertPluginError(fn: () => unknown, code: PluginErrorCode, message: string): PluginError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PluginError, `expected a PluginError, got ${caught}`);
  assert.equal(caught.name, "PluginError");
  assert.equal(caught.code, code);
  assert.equal(caught.message, message);
  return caught;
}

/** Like assertPluginError, but the message need only start with `prefix`. */
function assertPluginErrorPrefix(
  fn: () => unknown,
  code: PluginErrorCode,
  prefix: string,
): PluginError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PluginError, `expected a PluginError, got ${caught}`);
  assert.equal(caught.code, code);
  assert.ok(caught.message.startsWith(prefix), caught.message);
  return caught;
}

/** A decodeCert that fails the test if it is called. */
function decodeCertNever(text: string): Uint8Array {
  throw new Error(`decodeCert must not be called (got ${text.length} chars)`);
}

let certPromise: Promise<Certificate> | undefined;
/** One real AutoMTLS certificate (P-521, as go-plugin makes it), shared by the tests. */
function realCert(): Promise<Certificate> {
  certPromise ??= generateCertificate();
  return certPromise;
}

const GO_MUX_SENTENCE =
  "client requested gRPC broker multiplexing but plugin does not support the feature";

// --- formatHandshakeLine ---------------------------------------------------------------------

Deno.test("CORE_PROTOCOL_VERSION is go-plugin's core protocol version 1", () => {
  assert.equal(CORE_PROTOCOL_VERSION, 1);
});

Deno.test("formatHandshakeLine() prints go-plugin's line and keeps the empty cert field", () => {
  assert.equal(
    formatHandshakeLine({
      appVersion: 1,
      network: "unix",
      address: "/tmp/plugin1",
      serverCert: "",
    }),
    "1|1|unix|/tmp/plugin1|grpc|\n",
  );
});

Deno.test("formatHandshakeLine() prints a tcp address and the negotiated app version", () => {
  assert.equal(
    formatHandshakeLine({
      appVersion: 3,
      network: "tcp",
      address: "127.0.0.1:1234",
      serverCert: "",
    }),
    "1|3|tcp|127.0.0.1:1234|grpc|\n",
  );
});

Deno.test("formatHandshakeLine() puts the certificate in field 6", async () => {
  const cert = encodeHandshakeCert((await realCert()).der);
  assert.ok(cert.length > 50 && !cert.endsWith("="), "unpadded base64 of a P-521 cert");
  assert.equal(
    formatHandshakeLine({ appVersion: 1, network: "unix", address: "/tmp/p", serverCert: cert }),
    `1|1|unix|/tmp/p|grpc|${cert}\n`,
  );
});

Deno.test("formatHandshakeLine() prints the 7th field only when multiplex is given", () => {
  const base = { appVersion: 1, network: "unix" as const, address: "/tmp/plugin1", serverCert: "" };
  assert.equal(formatHandshakeLine(base), "1|1|unix|/tmp/plugin1|grpc|\n");
  assert.equal(
    formatHandshakeLine({ ...base, multiplex: undefined }),
    "1|1|unix|/tmp/plugin1|grpc|\n",
  );
  assert.equal(
    formatHandshakeLine({ ...base, multiplex: true }),
    "1|1|unix|/tmp/plugin1|grpc||true\n",
  );
  assert.equal(
    formatHandshakeLine({ ...base, multiplex: false }),
    "1|1|unix|/tmp/plugin1|grpc||false\n",
  );
});

Deno.test("formatHandshakeLine() rejects '|' or a line break in the address with TypeError", () => {
  for (const address of ["/tmp/a|b", "/tmp/a\nb", "/tmp/a\rb", "/tmp/a\n"]) {
    assert.throws(
      () => formatHandshakeLine({ appVersion: 1, network: "unix", address, serverCert: "" }),
      (err: unknown) => err instanceof TypeError && /address/.test(err.message),
      JSON.stringify(address),
    );
  }
});

Deno.test("formatHandshakeLine() rejects '|' or a line break in the cert with TypeError", () => {
  for (const serverCert of ["abc|true", "abc\ndef", "abc\r\n"]) {
    assert.throws(
      () => formatHandshakeLine({ appVersion: 1, network: "unix", address: "/tmp/p", serverCert }),
      (err: unknown) => err instanceof TypeError && /serverCert/.test(err.message),
      JSON.stringify(serverCert),
    );
  }
});

// --- parseHandshakeLine: protocol.md §2.4 step 1, fewer than 4 fields ----------------------

Deno.test("parseHandshakeLine() rejects a line with fewer than 4 fields", () => {
  for (const line of ["hello", "1|1|unix", "1|1|unix\n", "not a plugin at all\n"]) {
    const shown = line.trim();
    assertPluginError(
      () => parseHandshakeLine(line, expect()),
      "unrecognized-handshake",
      `Unrecognized remote plugin message: ${shown}`,
    );
  }
});

Deno.test("parseHandshakeLine() adds go-plugin's EOF sentence when stdout ended", () => {
  assertPluginError(
    () => parseHandshakeLine("hello", expect({ eof: true })),
    "unrecognized-handshake",
    "Unrecognized remote plugin message: hello\nFailed to read any lines from plugin's stdout",
  );
  // An empty stdout: go-plugin's scanner yields "" and ok=false.
  assertPluginError(
    () => parseHandshakeLine("", expect({ eof: true })),
    "unrecognized-handshake",
    "Unrecognized remote plugin message: \nFailed to read any lines from plugin's stdout",
  );
});

Deno.test("parseHandshakeLine() appends the diagnostics after a fewer-than-4-fields line", () => {
  const diagnostics = "This usually means\n" +
    "  the plugin was not compiled for this architecture,\n" +
    "  the plugin is missing dynamic-link libraries necessary to run,\n" +
    "  the plugin is not executable by this process due to file permissions, or\n" +
    "  the plugin failed to negotiate the initial go-plugin protocol handshake\n" +
    "\nAdditional notes about plugin:\n  Path: /bin/false\n";
  for (const eof of [false, true]) {
    let caught: unknown;
    try {
      parseHandshakeLine("hello\n", expect({ eof, diagnostics }));
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof PluginError);
    assert.equal(caught.code, "unrecognized-handshake");
    const head = "Unrecognized remote plugin message: hello" +
      (eof ? "\nFailed to read any lines from plugin's stdout" : "");
    // go-plugin: errText + "\n" + Diagnose(); a trailing newline is not part of the contract.
    assert.equal(caught.message.trimEnd(), head + "\n" + diagnostics.trimEnd());
  }
});

Deno.test("parseHandshakeLine() accepts exactly 4 fields as a handshake (not unrecognized)", () => {
  // 4 fields pass step 1 (and then fail on the protocol, see below).
  assert.throws(
    () => parseHandshakeLine("1|1|tcp|:1234", expect()),
    (err: unknown) => err instanceof PluginError && err.code === "unsupported-protocol",
  );
});

// --- step 2: core protocol version ------------------------------------------------------------

Deno.test("parseHandshakeLine() rejects a non-integer core version with Go's Atoi error", () => {
  assertPluginError(
    () => parseHandshakeLine("x|1|unix|/tmp/p|grpc|", expect()),
    "incompatible-core-version",
    'error parsing core protocol version: strconv.Atoi: parsing "x": invalid syntax',
  );
  for (const bad of ["1.0", "1 ", "1_0", "0x1", "", "+", "1e0"]) {
    assertPluginError(
      () => parseHandshakeLine(`${bad}|1|unix|/tmp/p|grpc|`, expect()),
      "incompatible-core-version",
      `error parsing core protocol version: strconv.Atoi: parsing ${
        JSON.stringify(bad)
      }: invalid syntax`,
    );
  }
});

Deno.test("parseHandshakeLine() rejects core version 2 with go-plugin's full text", () => {
  assertPluginError(
    () => parseHandshakeLine("2|1|unix|/tmp/p|grpc|", expect()),
    "incompatible-core-version",
    "incompatible core API version with plugin. Plugin version: 2, Core version: 1\n\n" +
      "To fix this, the plugin usually only needs to be recompiled.\n" +
      "Please report this to the plugin author",
  );
});

Deno.test("parseHandshakeLine() prints the core version as the plugin sent it (%s)", () => {
  // go-plugin formats parts[0] with %s, so "+2" and "02" appear verbatim.
  for (const v of ["+2", "02", "0", "-1"]) {
    assertPluginError(
      () => parseHandshakeLine(`${v}|1|unix|/tmp/p|grpc|`, expect()),
      "incompatible-core-version",
      `incompatible core API version with plugin. Plugin version: ${v}, Core version: 1\n\n` +
        "To fix this, the plugin usually only needs to be recompiled.\n" +
        "Please report this to the plugin author",
    );
  }
});

Deno.test({
  name: "parseHandshakeLine() rejects a core version out of Go's int range as a parse error",
  // Regression (fixed): atoi() in internal/handshake.ts accepts any digit string; Go's strconv.Atoi fails with
  // `value out of range` beyond int64, so go-plugin reports a parse error, not a version mismatch.
  fn() {
    assertPluginError(
      () => parseHandshakeLine("99999999999999999999|1|unix|/tmp/p|grpc|", expect()),
      "incompatible-core-version",
      "error parsing core protocol version: " +
        'strconv.Atoi: parsing "99999999999999999999": value out of range',
    );
  },
});

// --- step 3: application protocol version -----------------------------------------------------

Deno.test("parseHandshakeLine() rejects a non-integer app version with Go's Atoi error", () => {
  assertPluginError(
    () => parseHandshakeLine("1|x|unix|/tmp/p|grpc|", expect()),
    "incompatible-app-version",
    'Error parsing protocol version "x": strconv.Atoi: parsing "x": invalid syntax',
  );
  assertPluginError(
    () => parseHandshakeLine("1||unix|/tmp/p|grpc|", expect()),
    "incompatible-app-version",
    'Error parsing protocol version "": strconv.Atoi: parsing "": invalid syntax',
  );
});

Deno.test("parseHandshakeLine() rejects app version 11 when the host has only [1]", () => {
  // go-plugin's TestClientStart_badVersion.
  assertPluginError(
    () => parseHandshakeLine("1|11|unix|/tmp/p|grpc|", expect()),
    "incompatible-app-version",
    "incompatible API version with plugin. Plugin version: 11, Client versions: [1]",
  );
});

Deno.test("parseHandshakeLine() prints the host's versions as Go's %d of a slice: [1 2]", () => {
  assertPluginError(
    () => parseHandshakeLine("1|11|unix|/tmp/p|grpc|", expect({ hostVersions: [2, 1] })),
    "incompatible-app-version",
    "incompatible API version with plugin. Plugin version: 11, Client versions: [1 2]",
  );
  assertPluginError(
    () => parseHandshakeLine("1|1|unix|/tmp/p|grpc|", expect({ hostVersions: [] })),
    "incompatible-app-version",
    "incompatible API version with plugin. Plugin version: 1, Client versions: []",
  );
});

Deno.test({
  name: "parseHandshakeLine() prints the plugin's app version as a parsed integer (%d)",
  // Regression (fixed): the message uses the raw field parts[1]; go-plugin's checkProtoVersion formats the
  // parsed int with %d, so "011" and "+11" are reported as 11.
  fn() {
    for (const v of ["011", "+11"]) {
      assertPluginError(
        () => parseHandshakeLine(`1|${v}|unix|/tmp/p|grpc|`, expect()),
        "incompatible-app-version",
        "incompatible API version with plugin. Plugin version: 11, Client versions: [1]",
      );
    }
  },
});

Deno.test({
  name: "parseHandshakeLine() rejects an app version out of Go's int range as a parse error",
  // Regression (fixed): same root cause as the core version: Go's Atoi says `value out of range`.
  fn() {
    assertPluginError(
      () => parseHandshakeLine("1|99999999999999999999|unix|/tmp/p|grpc|", expect()),
      "incompatible-app-version",
      'Error parsing protocol version "99999999999999999999": ' +
        'strconv.Atoi: parsing "99999999999999999999": value out of range',
    );
  },
});

Deno.test("parseHandshakeLine() accepts +1 and 01 as versions, like Go's Atoi", () => {
  const cases: [string, number][] = [
    ["+1|+1|unix|/tmp/p|grpc|", 1],
    ["01|01|unix|/tmp/p|grpc|", 1],
    ["1|+3|unix|/tmp/p|grpc|", 3],
    ["1|003|unix|/tmp/p|grpc|", 3],
  ];
  for (const [line, app] of cases) {
    const info = parseHandshakeLine(line, expect({ hostVersions: [1, 3] }));
    assert.equal(info.coreVersion, 1, line);
    assert.equal(info.appVersion, app, line);
    assert.equal(info.address, "/tmp/p");
  }
});

// --- step 4: network --------------------------------------------------------------------------

Deno.test("parseHandshakeLine() rejects an unknown network, naming the address", () => {
  assertPluginError(
    () => parseHandshakeLine("1|1|udp|127.0.0.1:1234|grpc|", expect()),
    "unknown-network",
    "unknown address type: 127.0.0.1:1234",
  );
  // The check is exact: Go's switch has no case folding.
  assertPluginError(
    () => parseHandshakeLine("1|1|UNIX|/tmp/p|grpc|", expect()),
    "unknown-network",
    "unknown address type: /tmp/p",
  );
});

Deno.test("parseHandshakeLine() checks the app version before the network (go-plugin's order)", () => {
  assertPluginError(
    () => parseHandshakeLine("1|11|udp|:1|netrpc|", expect()),
    "incompatible-app-version",
    "incompatible API version with plugin. Plugin version: 11, Client versions: [1]",
  );
});

// --- step 5: protocol -------------------------------------------------------------------------

Deno.test("parseHandshakeLine() reads a 4-field line as netrpc and rejects it", () => {
  // go-plugin's TestClient: "1|1|tcp|:1234" is a netrpc plugin.
  const err = assertPluginErrorPrefix(
    () => parseHandshakeLine("1|1|tcp|:1234", expect()),
    "unsupported-protocol",
    'unsupported plugin protocol "netrpc". Supported: [grpc]',
  );
  assert.ok(err.message.includes("gRPC"), err.message);
});

Deno.test("parseHandshakeLine() rejects an explicit netrpc protocol", () => {
  assertPluginErrorPrefix(
    () => parseHandshakeLine("1|1|tcp|:1234|netrpc|", expect()),
    "unsupported-protocol",
    'unsupported plugin protocol "netrpc". Supported: [grpc]',
  );
});

Deno.test("parseHandshakeLine() rejects another protocol with go-plugin's text", () => {
  assertPluginError(
    () => parseHandshakeLine("1|1|tcp|:1234|http2|", expect()),
    "unsupported-protocol",
    'unsupported plugin protocol "http2". Supported: [grpc]',
  );
  assertPluginError(
    () => parseHandshakeLine("1|1|tcp|:1234||", expect()),
    "unsupported-protocol",
    'unsupported plugin protocol "". Supported: [grpc]',
  );
});

Deno.test("parseHandshakeLine() accepts the 5-field form of go-plugin's non-Go docs", () => {
  const info = parseHandshakeLine("1|1|tcp|127.0.0.1:1234|grpc", expect());
  assert.deepEqual(info, {
    coreVersion: 1,
    appVersion: 1,
    network: "tcp",
    address: "127.0.0.1:1234",
    protocol: "grpc",
  });
});

// --- step 6: certificate ----------------------------------------------------------------------

Deno.test("parseHandshakeLine() ignores a cert field of 50 characters or fewer", () => {
  for (const field of ["", "x", "A".repeat(50), "not-base64!".repeat(4)]) {
    const info = parseHandshakeLine(
      `1|1|unix|/tmp/p|grpc|${field}`,
      expect({ decodeCert: decodeCertNever }),
    );
    assert.equal(info.serverCert, undefined, field);
    assert.equal("serverCert" in info, false);
  }
});

Deno.test("parseHandshakeLine() decodes a cert field longer than 50 characters", async () => {
  const cert = await realCert();
  const field = encodeHandshakeCert(cert.der);
  const info = parseHandshakeLine(`1|1|unix|/tmp/p|grpc|${field}\n`, expect());
  assert.deepEqual(info.serverCert, cert.der);

  // The 51st character is what makes go-plugin look at the field.
  const seen: string[] = [];
  const decodeCert = (text: string) => {
    seen.push(text);
    return new Uint8Array([0x30, 0]);
  };
  parseHandshakeLine(`1|1|unix|/tmp/p|grpc|${"B".repeat(51)}`, expect({ decodeCert }));
  assert.deepEqual(seen, ["B".repeat(51)]);
});

Deno.test("parseHandshakeLine() reports a cert that cannot be decoded as bad-certificate", () => {
  const err = assertPluginError(
    () => parseHandshakeLine(`1|1|unix|/tmp/p|grpc|${"!".repeat(60)}`, expect()),
    "bad-certificate",
    "error parsing server cert: handshake certificate is not standard base64",
  );
  assert.ok(err.cause instanceof TypeError);

  const cause = new Error("x509: malformed certificate");
  const err2 = assertPluginError(
    () =>
      parseHandshakeLine(
        `1|1|unix|/tmp/p|grpc|${"A".repeat(64)}`,
        expect({
          decodeCert: () => {
            throw cause;
          },
        }),
      ),
    "bad-certificate",
    "error parsing server cert: x509: malformed certificate",
  );
  assert.equal(err2.cause, cause);
});

Deno.test("parseHandshakeLine() checks the protocol before the cert (go-plugin's order)", () => {
  assertPluginErrorPrefix(
    () => parseHandshakeLine(`1|1|unix|/tmp/p|netrpc|${"!".repeat(60)}`, expect()),
    "unsupported-protocol",
    'unsupported plugin protocol "netrpc"',
  );
});

// --- step 7: gRPC broker multiplexing ----------------------------------------------------------

Deno.test("parseHandshakeLine() reads a 7th field of true or false", () => {
  assert.equal(parseHandshakeLine("1|1|unix|/tmp/p|grpc||true", expect()).multiplex, true);
  assert.equal(parseHandshakeLine("1|1|unix|/tmp/p|grpc||false", expect()).multiplex, false);
  assert.equal(parseHandshakeLine("1|1|unix|/tmp/p|grpc|", expect()).multiplex, undefined);
  assert.equal(
    parseHandshakeLine("1|1|unix|/tmp/p|grpc||true", expect({ multiplexRequested: true }))
      .multiplex,
    true,
  );
});

Deno.test("parseHandshakeLine() rejects a non-boolean 7th field when multiplexing was requested", () => {
  for (const field of ["garbage", "yes", ""]) {
    assertPluginError(
      () =>
        parseHandshakeLine(`1|1|unix|/tmp/p|grpc||${field}`, expect({ multiplexRequested: true })),
      "broker-mux-unsupported",
      `error parsing ${JSON.stringify(field)} as a boolean for gRPC broker multiplexing support`,
    );
  }
});

Deno.test({
  name: "parseHandshakeLine() ignores the 7th field when multiplexing was not requested",
  // Regression (fixed): parseHandshakeLine validates field 7 unconditionally. go-plugin (client.go; protocol.md §2.4 step 7)
  // only parses parts[6] inside `if GRPCBrokerMultiplex && protocol == grpc`, so a host that
  // did not ask for multiplexing (plugwire's host never does) accepts any 7th field.
  fn() {
    const info = parseHandshakeLine("1|1|unix|/tmp/p|grpc||garbage", expect());
    assert.equal(info.address, "/tmp/p");
    assert.equal(info.multiplex, undefined);
  },
});

Deno.test({
  name: "parseHandshakeLine() reads the 7th field with Go's strconv.ParseBool spellings",
  // Regression (fixed): only "true"/"false" are accepted. go-plugin parses parts[6] with strconv.ParseBool,
  // which also accepts 1, t, T, TRUE, True and 0, f, F, FALSE, False.
  fn() {
    for (const t of ["1", "t", "T", "TRUE", "True", "true"]) {
      const info = parseHandshakeLine(
        `1|1|unix|/p|grpc||${t}`,
        expect({ multiplexRequested: true }),
      );
      assert.equal(info.multiplex, true, t);
    }
    for (const f of ["0", "f", "F", "FALSE", "False", "false"]) {
      assertPluginError(
        () => parseHandshakeLine(`1|1|unix|/p|grpc||${f}`, expect({ multiplexRequested: true })),
        "broker-mux-unsupported",
        GO_MUX_SENTENCE,
      );
    }
  },
});

Deno.test("parseHandshakeLine() rejects a requested mux when the plugin printed no 7th field", () => {
  // go-plugin's TestClient_RequestGRPCMultiplexing_UnsupportedByPlugin, "…|grpc|".
  for (const line of ["1|1|unix|/tmp/p|grpc|", "1|1|unix|/tmp/p|grpc"]) {
    assertPluginError(
      () => parseHandshakeLine(line, expect({ multiplexRequested: true })),
      "broker-mux-unsupported",
      GO_MUX_SENTENCE +
        "; for Go plugins, you will need to update the " +
        "github.com/hashicorp/go-plugin dependency and recompile",
    );
  }
});

Deno.test("parseHandshakeLine() rejects a requested mux with the bare sentence on false", () => {
  // go-plugin's TestClient_RequestGRPCMultiplexing_UnsupportedByPlugin, "…|grpc||false".
  assertPluginError(
    () => parseHandshakeLine("1|1|unix|/tmp/p|grpc||false", expect({ multiplexRequested: true })),
    "broker-mux-unsupported",
    GO_MUX_SENTENCE,
  );
});

Deno.test("parseHandshakeLine() ignores fields after the 7th", () => {
  const info = parseHandshakeLine("1|1|unix|/tmp/p|grpc||true|extra|more", expect());
  assert.equal(info.multiplex, true);
  assert.equal(info.address, "/tmp/p");
});

// --- whitespace, round trip -------------------------------------------------------------------

Deno.test("parseHandshakeLine() trims surrounding whitespace and CRLF like Go's TrimSpace", () => {
  for (
    const line of [
      "1|1|unix|/tmp/p|grpc|\r\n",
      "  1|1|unix|/tmp/p|grpc|\t\n",
      "\n1|1|unix|/tmp/p|grpc|",
    ]
  ) {
    const info = parseHandshakeLine(line, expect());
    assert.equal(info.coreVersion, 1, JSON.stringify(line));
    assert.equal(info.address, "/tmp/p");
    assert.equal(info.protocol, "grpc");
  }
  // The trailing "\r" would otherwise end up in field 7 and fail the boolean parse.
  assert.equal(
    parseHandshakeLine("1|1|unix|/tmp/p|grpc||true\r\n", expect({ multiplexRequested: true }))
      .multiplex,
    true,
  );
  // The trimmed line is what an unrecognized-handshake error shows.
  assertPluginError(
    () => parseHandshakeLine("  hello  \r\n", expect()),
    "unrecognized-handshake",
    "Unrecognized remote plugin message: hello",
  );
});

Deno.test("parseHandshakeLine() keeps whitespace inside fields (no per-field trimming)", () => {
  assertPluginError(
    () => parseHandshakeLine("1| 1|unix|/tmp/p|grpc|", expect()),
    "incompatible-app-version",
    'Error parsing protocol version " 1": strconv.Atoi: parsing " 1": invalid syntax',
  );
});

Deno.test("parseHandshakeLine() reads back what formatHandshakeLine() printed", async () => {
  const cert = await realCert();
  const unix = formatHandshakeLine({
    appVersion: 1,
    network: "unix",
    address: "/tmp/plugin1",
    serverCert: "",
  });
  assert.deepEqual(parseHandshakeLine(unix, expect()), {
    coreVersion: 1,
    appVersion: 1,
    network: "unix",
    address: "/tmp/plugin1",
    protocol: "grpc",
  });

  const tcp = formatHandshakeLine({
    appVersion: 3,
    network: "tcp",
    address: "127.0.0.1:1234",
    serverCert: encodeHandshakeCert(cert.der),
    multiplex: true,
  });
  assert.deepEqual(
    parseHandshakeLine(tcp, expect({ hostVersions: [2, 3], multiplexRequested: true })),
    {
      coreVersion: 1,
      appVersion: 3,
      network: "tcp",
      address: "127.0.0.1:1234",
      protocol: "grpc",
      serverCert: cert.der,
      multiplex: true,
    },
  );
});

/**
 * Reading a certificate another process sent, on either side: it must be one whole X.509
 * certificate, so that junk is refused where it arrives (`bad-certificate`) rather than as a TLS
 * failure later. The host checks the plugin's handshake certificate ({@link checkCertificate});
 * the plugin checks the host's AutoMTLS certificate in `PLUGIN_CLIENT_CERT`
 * ({@link parseClientCertPem}), before anything is served: a plugin that trusted a certificate
 * it cannot parse would serve a socket no host can use. One DER length rule for both.
 * Loaded only with TLS, like mtls.ts: the ASN.1 packages cost a plaintext peer start-up time.
 *
 * @module
 */

import type * as crypto from "node:crypto";
import { PluginError } from "./errors.ts";
import { builtinModule } from "./runtime.ts";

/**
 * node:crypto's certificate parser, native in both runtimes. Loaded on first use: a plaintext
 * plugin never needs it, and loading it costs 1.5-2.5 ms (the ASN.1 packages it replaced cost
 * ~20 ms: bench/README.md).
 */
function parseX509(der: Uint8Array): void {
  const { X509Certificate } = builtinModule<typeof crypto>("node:crypto");
  new X509Certificate(der);
}

/**
 * Checks that `der` is exactly one X.509 certificate: a DER SEQUENCE whose length covers every
 * byte, which parses as a Certificate. Throws `TypeError` saying what is wrong.
 */
export function checkCertificate(der: Uint8Array): void {
  if (der.length < 2 || der[0] !== 0x30) throw new TypeError("not a DER SEQUENCE");
  // The outer length, short or long form: trailing bytes after it are not part of the DER.
  const length = derLength(der);
  if (length < 0) throw new TypeError("bad DER length");
  if (length !== der.length) {
    throw new TypeError(`the DER SEQUENCE is ${length} bytes but ${der.length} bytes were sent`);
  }
  try {
    parseX509(der);
  } catch (cause) {
    throw new TypeError(`not an X.509 certificate: ${(cause as Error).message}`, { cause });
  }
}

const BEGIN = "-----BEGIN CERTIFICATE-----";
const END = "-----END CERTIFICATE-----";

/**
 * The DER bytes of every certificate in `pem`. The text must be one or more PEM "CERTIFICATE"
 * blocks and nothing else but whitespace; each block must be base64 of exactly one X.509
 * certificate. Throws a {@link PluginError} (`bad-certificate`) saying what is wrong otherwise,
 * never any other error.
 */
export function parseClientCertPem(pem: string): Uint8Array[] {
  const certs: Uint8Array[] = [];
  let rest = pem.trim();
  if (rest === "") throw bad("it is empty");
  while (rest !== "") {
    if (!rest.startsWith(BEGIN)) {
      throw bad(
        certs.length ? "something other than a certificate follows it" : "no PEM CERTIFICATE block",
      );
    }
    const end = rest.indexOf(END, BEGIN.length);
    if (end < 0) throw bad(`block ${certs.length + 1} has no END line`);
    certs.push(decodeCertificate(rest.slice(BEGIN.length, end), certs.length + 1));
    rest = rest.slice(end + END.length).trim();
  }
  return certs;
}

function decodeCertificate(body: string, index: number): Uint8Array {
  const base64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw bad(`block ${index} is not base64`);
  }
  const binary = atob(base64);
  const der = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) der[i] = binary.charCodeAt(i);
  if (derLength(der) !== der.length) {
    throw bad(`block ${index} is not one DER structure (trailing or missing bytes)`);
  }
  try {
    parseX509(der);
  } catch (err) {
    throw bad(`block ${index} is not an X.509 certificate`, err);
  }
  return der;
}

/** The length a DER SEQUENCE says it has (header included), or -1 if it is not one. */
function derLength(der: Uint8Array): number {
  if (der.length < 2 || der[0] !== 0x30) return -1;
  const first = der[1];
  if (first < 0x80) return 2 + first;
  const size = first & 0x7f;
  if (size === 0 || size > 4 || der.length < 2 + size) return -1;
  let length = 0;
  for (let i = 0; i < size; i++) length = length * 256 + der[2 + i];
  return 2 + size + length;
}

function bad(why: string, cause?: unknown): PluginError {
  return new PluginError(
    "bad-certificate",
    `client cert provided but failed to parse: PLUGIN_CLIENT_CERT ${why}`,
    { cause },
  );
}

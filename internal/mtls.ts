/**
 * go-plugin AutoMTLS certificates, built from WebCrypto keys.
 *
 * With AutoMTLS the host and the plugin each make a throwaway self-signed certificate
 * (go-plugin mtls.go `generateCert`): the host passes its PEM in `PLUGIN_CLIENT_CERT`, the
 * plugin sends its DER as handshake field 6 (unpadded standard base64). Each side then trusts
 * exactly the other's certificate, so the profile below matters: Go checks the DNS SAN
 * `localhost`, and needs EKU clientAuth on the client side.
 *
 * @module
 */

import {
  bitString,
  explicit,
  implicitIa5,
  namedBits,
  octetString,
  oid,
  printableString,
  sequence,
  set,
  TRUE,
  unsignedInteger,
  x509Time,
} from "./der.ts";
import { derToPem, pemBlock } from "./pem.ts";

// Kept importable from here too: the encoding helpers live in pem.ts so that code which only
// reads certificates does not load the ASN.1 packages.
export { decodeHandshakeCert, derToPem, encodeHandshakeCert, pemToDer } from "./pem.ts";

/** A certificate and its private key, in the forms TLS stacks and the handshake need. */
export interface Certificate {
  /** DER bytes of the certificate. */
  der: Uint8Array;
  /** PEM "CERTIFICATE" block, lines of 64 chars, trailing "\n". */
  certPem: string;
  /** PEM "PRIVATE KEY" (PKCS#8) block of the ECDSA key, as `node:tls` accepts it. */
  keyPem: string;
}

const OID_ORGANIZATION = "2.5.4.10";
const OID_COMMON_NAME = "2.5.4.3";
const OID_KEY_USAGE = "2.5.29.15";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_EXT_KEY_USAGE = "2.5.29.37";
const OID_SUBJECT_KEY_ID = "2.5.29.14";
const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
/** KeyUsage bits (RFC 5280 §4.2.1.3). */
const KU_DIGITAL_SIGNATURE = 0, KU_KEY_ENCIPHERMENT = 2, KU_KEY_AGREEMENT = 4, KU_KEY_CERT_SIGN = 5;
const HOST = "localhost";
/** go-plugin: NotBefore = now - 30 s (tolerates small clock skew between host and plugin). */
const NOT_BEFORE_SKEW_MS = 30 * 1000;
/** go-plugin: NotAfter = now + 262980 h (about 30 years). */
const LIFETIME_MS = 262_980 * 60 * 60 * 1000;
/**
 * The curve of an AutoMTLS key. go-plugin always uses P-521; hosts and plugins on grpcio
 * (BoringSSL, e.g. pyvider-rpcplugin) cannot do P-521 and need P-384 (docs/protocol.md §5.4).
 *
 * @example A host for grpcio plugins
 * ```ts
 * import type { AutoMtlsCurve, StartOptions } from "@plugwire/plugwire/host";
 * import { KV } from "../gen/kv/kv_pb.ts";
 * import assert from "node:assert/strict";
 *
 * const curve: AutoMtlsCurve = "P-384";
 * const options: StartOptions = {
 *   cmd: ["python3", "plugin.py"],
 *   handshake: { protocolVersion: 1, magicCookieKey: "BASIC_PLUGIN", magicCookieValue: "hello" },
 *   plugins: { kv: KV },
 *   autoMtls: true,
 *   autoMtlsCurve: curve,
 * };
 * assert.equal(options.autoMtlsCurve, "P-384");
 * ```
 */
export type AutoMtlsCurve = "P-521" | "P-384";

/**
 * Each curve's hash and scalar size; WebCrypto signatures are r || s (IEEE P1363), two
 * scalars.
 */
const CURVES = {
  // ecdsa-with-SHA512 and ecdsa-with-SHA384 (RFC 5758), AlgorithmIdentifiers without parameters.
  "P-521": { hash: "SHA-512", scalarBytes: 66, algorithm: "1.2.840.10045.4.3.4" },
  "P-384": { hash: "SHA-384", scalarBytes: 48, algorithm: "1.2.840.10045.4.3.3" },
} as const;

/**
 * Deviations from the AutoMTLS profile, for tests and manual TLS setups (expired or
 * not-yet-valid certificates, other host names). Every field defaults to go-plugin's value.
 */
export interface CertificateOptions {
  /** Start of validity. @default {now - 30 s} */
  notBefore?: Date;
  /** End of validity. @default {now + 262980 h} */
  notAfter?: Date;
  /** The DNS names of the SubjectAltName extension (none: no SAN). @default {["localhost"]} */
  dnsNames?: string[];
  /** Subject and issuer CN. @default {"localhost"} */
  commonName?: string;
  /** The key's curve, signed with SHA-512 (P-521) or SHA-384 (P-384). @default {"P-521"} */
  curve?: AutoMtlsCurve;
}

/**
 * Generates a go-plugin AutoMTLS certificate exactly like go-plugin's `generateCert`:
 * ECDSA P-521 key, ecdsa-with-SHA512 (or P-384 with SHA-384 on request), random 128-bit serial, subject = issuer =
 * `O=HashiCorp, CN=localhost`, SAN `DNS:localhost`, NotBefore now-30 s, NotAfter now+262980 h,
 * KeyUsage (critical) digitalSignature|keyEncipherment|keyAgreement|keyCertSign,
 * EKU clientAuth+serverAuth, BasicConstraints (critical) CA:TRUE, SubjectKeyIdentifier.
 * Extensions come in the order Go's `x509.CreateCertificate` writes them.
 *
 * @param options Deviations from that profile (validity, names); none by default.
 */
export async function generateCertificate(
  options: CertificateOptions = {},
): Promise<Certificate> {
  const curveName = options.curve ?? "P-521";
  const curve = CURVES[curveName];
  if (!curve) throw new TypeError(`Cannot make a certificate: unknown curve ${curveName}`);
  const keys = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: curveName },
    true,
    ["sign", "verify"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  // The subjectPublicKey BIT STRING ends the SPKI: the uncompressed point 04 || X || Y.
  const point = spki.subarray(spki.length - (1 + 2 * curve.scalarBytes));
  // Go 1.25+ derives the SubjectKeyId of a CA certificate with RFC 7093 method 1: the leftmost
  // 160 bits of SHA-256 over the subjectPublicKey bits. Peers treat the value as opaque.
  const skid = new Uint8Array(await crypto.subtle.digest("SHA-256", point)).slice(0, 20);

  const now = Date.now();
  const name = hashiCorpName(options.commonName ?? HOST);
  const dnsNames = options.dnsNames ?? [HOST];
  const algorithm = sequence(oid(curve.algorithm));
  const tbs = sequence(
    explicit(0, unsignedInteger(Uint8Array.of(2))), // v3
    unsignedInteger(crypto.getRandomValues(new Uint8Array(16))), // [0, 2^128) like Go
    algorithm,
    name, // issuer: self-signed
    // Dropping milliseconds, as Go does.
    sequence(
      x509Time(options.notBefore ?? new Date(now - NOT_BEFORE_SKEW_MS)),
      x509Time(options.notAfter ?? new Date(now + LIFETIME_MS)),
    ),
    name, // subject
    spki,
    explicit(
      3,
      sequence(
        // In the order Go's x509.CreateCertificate writes them.
        extension(
          OID_KEY_USAGE,
          true,
          namedBits([
            KU_DIGITAL_SIGNATURE,
            KU_KEY_ENCIPHERMENT,
            KU_KEY_AGREEMENT,
            KU_KEY_CERT_SIGN,
          ]),
        ),
        // Go writes the EKUs in template order: go-plugin lists clientAuth first.
        extension(OID_EXT_KEY_USAGE, false, sequence(oid(OID_CLIENT_AUTH), oid(OID_SERVER_AUTH))),
        // CA:TRUE with no pathLenConstraint: each side uses the peer's leaf as its only root.
        extension(OID_BASIC_CONSTRAINTS, true, sequence(TRUE)),
        extension(OID_SUBJECT_KEY_ID, false, octetString(skid)),
        // An empty SAN extension is invalid (RFC 5280): no names, no extension.
        ...(dnsNames.length
          ? [extension(
            OID_SUBJECT_ALT_NAME,
            false,
            sequence(...dnsNames.map((dnsName) => implicitIa5(2, dnsName))),
          )]
          : []),
      ),
    ),
  );

  const rawSignature = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: curve.hash }, keys.privateKey, tbs),
  );
  // X.509 wants the DER ECDSA-Sig-Value, not WebCrypto's fixed-width r || s.
  const signature = sequence(
    unsignedInteger(rawSignature.subarray(0, curve.scalarBytes)),
    unsignedInteger(rawSignature.subarray(curve.scalarBytes)),
  );
  const der = sequence(tbs, algorithm, bitString(signature));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { der, certPem: derToPem(der), keyPem: pemBlock("PRIVATE KEY", pkcs8) };
}

/**
 * `O=HashiCorp, CN=<commonName>` (CN=localhost by default): one attribute per RDN, O first,
 * PrintableString, as Go does.
 */
function hashiCorpName(commonName: string): Uint8Array<ArrayBuffer> {
  const rdn = (type: string, value: string) => set(sequence(oid(type), printableString(value)));
  return sequence(rdn(OID_ORGANIZATION, "HashiCorp"), rdn(OID_COMMON_NAME, commonName));
}

/** An X.509 Extension: its id, `critical` only when true (DER omits a DEFAULT), its value's DER. */
function extension(
  id: string,
  critical: boolean,
  value: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return sequence(oid(id), ...(critical ? [TRUE] : []), octetString(value));
}

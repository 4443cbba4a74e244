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

import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate as X509Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from "@peculiar/asn1-x509";
import { ECDSASigValue, ecdsaWithSHA384, ecdsaWithSHA512 } from "@peculiar/asn1-ecc";
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
  "P-521": { hash: "SHA-512", scalarBytes: 66, algorithm: ecdsaWithSHA512 },
  "P-384": { hash: "SHA-384", scalarBytes: 48, algorithm: ecdsaWithSHA384 },
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
  const spki = AsnConvert.parse(
    await crypto.subtle.exportKey("spki", keys.publicKey),
    SubjectPublicKeyInfo,
  );
  // Go 1.25+ derives the SubjectKeyId of a CA certificate with RFC 7093 method 1: the leftmost
  // 160 bits of SHA-256 over the subjectPublicKey bits. Peers treat the value as opaque.
  const skid = (await crypto.subtle.digest("SHA-256", spki.subjectPublicKey)).slice(0, 20);

  const now = Date.now();
  const name = hashiCorpName(options.commonName ?? HOST);
  const dnsNames = options.dnsNames ?? [HOST];
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: derInteger(crypto.getRandomValues(new Uint8Array(16))), // [0, 2^128) like Go
    signature: curve.algorithm,
    issuer: name, // self-signed
    subject: name,
    // asn1-x509's Time picks UTCTime before 2050 and GeneralizedTime from 2050 on (RFC 5280),
    // and drops milliseconds, as Go does.
    validity: new Validity({
      notBefore: options.notBefore ?? new Date(now - NOT_BEFORE_SKEW_MS),
      notAfter: options.notAfter ?? new Date(now + LIFETIME_MS),
    }),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      extension(
        id_ce_keyUsage,
        true,
        new KeyUsage(
          KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment |
            KeyUsageFlags.keyAgreement | KeyUsageFlags.keyCertSign,
        ),
      ),
      // Go writes the EKUs in template order: go-plugin lists clientAuth first.
      extension(
        id_ce_extKeyUsage,
        false,
        new ExtendedKeyUsage([id_kp_clientAuth, id_kp_serverAuth]),
      ),
      // CA:TRUE with no pathLenConstraint: each side uses the peer's leaf as its only root.
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true })),
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(skid)),
      // An empty SAN extension is invalid (RFC 5280): no names, no extension.
      ...(dnsNames.length
        ? [extension(
          id_ce_subjectAltName,
          false,
          new SubjectAlternativeName(dnsNames.map((dNSName) => new GeneralName({ dNSName }))),
        )]
        : []),
    ]),
  });

  const tbsDer = AsnConvert.serialize(tbs);
  const rawSignature = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: curve.hash }, keys.privateKey, tbsDer),
  );
  // X.509 wants the DER ECDSA-Sig-Value, not WebCrypto's fixed-width r || s.
  const signature = new ECDSASigValue({
    r: derInteger(rawSignature.subarray(0, curve.scalarBytes)),
    s: derInteger(rawSignature.subarray(curve.scalarBytes)),
  });
  // The serializer encodes `tbs` again; DER is deterministic, so these are the signed bytes.
  const cert = new X509Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: curve.algorithm,
    signatureValue: AsnConvert.serialize(signature),
  });
  const der = new Uint8Array(AsnConvert.serialize(cert));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { der, certPem: derToPem(der), keyPem: pemBlock("PRIVATE KEY", pkcs8) };
}

/**
 * `O=HashiCorp, CN=<commonName>` (CN=localhost by default): one attribute per RDN, O first,
 * PrintableString (letters, digits, space and '()+,-./:=?), as Go does.
 */
function hashiCorpName(commonName: string): Name {
  const rdn = (type: string, value: string) =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ printableString: value }) }),
    ]);
  return new Name([rdn(OID_ORGANIZATION, "HashiCorp"), rdn(OID_COMMON_NAME, commonName)]);
}

/** An X.509 extension whose value is the DER of `value`. */
function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({
    extnID,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

/**
 * Big-endian unsigned bytes as the content of a positive DER INTEGER: leading zero bytes
 * dropped (DER wants the minimal form), and a 0x00 prepended when the top bit is set, since
 * INTEGER is two's complement and the value would otherwise read as negative.
 */
function derInteger(bytes: Uint8Array): ArrayBuffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  const out = new Uint8Array(trimmed.length + (trimmed[0] & 0x80 ? 1 : 0));
  out.set(trimmed, out.length - trimmed.length);
  return out.buffer;
}

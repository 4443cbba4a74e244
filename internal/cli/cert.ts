/**
 * What `plugwire inspect` and `check` say about a plugin's TLS certificate, read with
 * `node:crypto`'s X509Certificate.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";

/** A certificate, described. */
export interface CertificateInfo {
  /** `ec` or `rsa` (or another key type). */
  keyType: string;
  /** For EC keys: `P-256`, `P-384`, `P-521` (else the OpenSSL name). */
  curve?: string;
  /** For RSA keys: the modulus size in bits. */
  bits?: number;
  /** The subject, e.g. `O=HashiCorp, CN=localhost`. */
  subject: string;
  /** The issuer. */
  issuer: string;
  /** SubjectAltName entries, e.g. `DNS:localhost`. */
  sans: string[];
  /** Validity window, ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** BasicConstraints CA. */
  ca: boolean;
  /** SHA-256 fingerprint. */
  sha256: string;
}

const CURVES: Record<string, string> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

/** Describes a DER certificate; throws when it cannot be parsed. */
export function describeCertificate(der: Uint8Array): CertificateInfo {
  const cert = new X509Certificate(der);
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const info: CertificateInfo = {
    keyType: key.asymmetricKeyType ?? "unknown",
    subject: cert.subject.split("\n").join(", "),
    issuer: cert.issuer.split("\n").join(", "),
    sans: cert.subjectAltName ? cert.subjectAltName.split(", ") : [],
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    ca: cert.ca,
    sha256: cert.fingerprint256,
  };
  if (details.namedCurve) info.curve = CURVES[details.namedCurve] ?? details.namedCurve;
  if (details.modulusLength) info.bits = details.modulusLength;
  return info;
}

/** One line: `ECDSA P-521, CA, subject O=HashiCorp, CN=localhost, SAN DNS:localhost, valid …`. */
export function certificateSummary(info: CertificateInfo): string {
  const key = info.curve
    ? `${info.keyType === "ec" ? "ECDSA" : info.keyType} ${info.curve}`
    : info.bits
    ? `${info.keyType.toUpperCase()} ${info.bits}`
    : info.keyType;
  return `${key}${info.ca ? ", CA" : ""}, subject ${info.subject}, ` +
    `SAN ${info.sans.length ? info.sans.join(" ") : "(none)"}, ` +
    `valid ${info.notBefore.slice(0, 10)} to ${info.notAfter.slice(0, 10)}`;
}

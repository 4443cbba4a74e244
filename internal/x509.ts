/**
 * Reading a certificate another process sent: it must be one whole X.509 certificate, so that
 * junk is refused where it arrives (`bad-certificate`) rather than as a TLS failure later.
 * Loaded only with TLS, like mtls.ts: the ASN.1 packages cost a plaintext peer start-up time.
 *
 * @module
 */

import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";

/**
 * Checks that `der` is exactly one X.509 certificate: a DER SEQUENCE whose length covers every
 * byte, which parses as a Certificate. Throws `TypeError` saying what is wrong.
 */
export function checkCertificate(der: Uint8Array): void {
  if (der.length < 2 || der[0] !== 0x30) throw new TypeError("not a DER SEQUENCE");
  // The outer length, short or long form: trailing bytes after it are not part of the DER.
  let length = der[1];
  let header = 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || der.length < 2 + bytes) {
      throw new TypeError("bad DER length");
    }
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[2 + i];
    header = 2 + bytes;
  }
  if (header + length !== der.length) {
    throw new TypeError(
      `the DER SEQUENCE is ${header + length} bytes but ${der.length} bytes were sent`,
    );
  }
  try {
    AsnConvert.parse(der, Certificate);
  } catch (cause) {
    throw new TypeError(`not an X.509 certificate: ${(cause as Error).message}`, { cause });
  }
}

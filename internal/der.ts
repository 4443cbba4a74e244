/**
 * Just enough DER (ITU-T X.690) to write go-plugin's one AutoMTLS certificate profile
 * (mtls.ts). The ASN.1 packages did this before; they cost a plugin 20-25 ms of start-up with
 * AutoMTLS (bench/README.md, "AutoMTLS cold start"), more than the rest of its certificate work,
 * and the profile is fixed, so it is written here. The tests parse every certificate with three
 * independent readers (node:crypto, @peculiar/asn1-x509, openssl) and Go checks it in interop.
 *
 * @module
 */

/** A tag and its contents, with the definite length DER requires (short form below 128). */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const size = contents.reduce((sum, part) => sum + part.length, 0);
  const length: number[] = [];
  if (size < 0x80) length.push(size);
  else {
    for (let rest = size; rest > 0; rest = Math.floor(rest / 256)) length.unshift(rest & 0xff);
    length.unshift(0x80 | length.length);
  }
  const out = new Uint8Array(1 + length.length + size);
  out[0] = tag;
  out.set(length, 1);
  let at = 1 + length.length;
  for (const part of contents) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** SEQUENCE. */
export const sequence = (...items: Uint8Array[]): Uint8Array<ArrayBuffer> => tlv(0x30, ...items);
/** SET (callers pass one element, or elements already in DER order). */
export const set = (...items: Uint8Array[]): Uint8Array<ArrayBuffer> => tlv(0x31, ...items);
/** OCTET STRING. */
export const octetString = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => tlv(0x04, bytes);
/** BOOLEAN TRUE (DER: 0xFF). FALSE is a DEFAULT in every place this profile has one: omitted. */
export const TRUE: Uint8Array<ArrayBuffer> = Uint8Array.of(0x01, 0x01, 0xff);
/** A context-specific constructed tag `[n]`: EXPLICIT tagging around `inner`. */
export const explicit = (n: number, inner: Uint8Array): Uint8Array<ArrayBuffer> =>
  tlv(0xa0 | n, inner);

/** BIT STRING of whole bytes (no unused bits), as keys and signatures are. */
export const bitString = (bytes: Uint8Array): Uint8Array<ArrayBuffer> =>
  tlv(0x03, Uint8Array.of(0), bytes);

/**
 * A named-bit BIT STRING (KeyUsage): bit 0 is the first byte's top bit, and DER drops
 * trailing zero bits, saying how many of the last byte are unused.
 */
export function namedBits(bits: number[]): Uint8Array<ArrayBuffer> {
  const last = Math.max(...bits);
  const bytes = new Uint8Array((last >> 3) + 1);
  for (const bit of bits) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return tlv(0x03, Uint8Array.of(7 - (last & 7)), bytes);
}

/**
 * A positive INTEGER from big-endian unsigned bytes: leading zero bytes dropped (DER wants
 * the minimal form), and a 0x00 prepended when the top bit is set, since INTEGER is two's
 * complement and the value would otherwise read as negative.
 */
export function unsignedInteger(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return trimmed[0] & 0x80 ? tlv(0x02, Uint8Array.of(0), trimmed) : tlv(0x02, trimmed);
}

/** OBJECT IDENTIFIER from its dotted form: the first two arcs in one byte, then base 128. */
export function oid(dotted: string): Uint8Array<ArrayBuffer> {
  const arcs = dotted.split(".").map(Number);
  const values = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  const out: number[] = [];
  for (const value of values) {
    const groups = [value & 0x7f];
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
      groups.unshift(0x80 | (rest & 0x7f));
    }
    out.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** PrintableString (the caller keeps to its alphabet: letters, digits, space, '()+,-./:=?). */
export function printableString(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new TypeError(`not a PrintableString: ${JSON.stringify(text)}`);
  }
  return tlv(0x13, new TextEncoder().encode(text));
}

/** IA5String under an IMPLICIT context tag `[n]` (GeneralName's dNSName is `[2]`). */
export const implicitIa5 = (n: number, text: string): Uint8Array<ArrayBuffer> =>
  tlv(0x80 | n, new TextEncoder().encode(text));

/**
 * An X.509 Time (RFC 5280 §4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for 1950-2049, GeneralizedTime
 * `YYYYMMDDHHMMSSZ` outside them, to the second (the fraction is dropped, as Go does).
 */
export function x509Time(date: Date): Uint8Array<ArrayBuffer> {
  const two = (n: number) => String(n).padStart(2, "0");
  const year = date.getUTCFullYear();
  const rest = two(date.getUTCMonth() + 1) + two(date.getUTCDate()) + two(date.getUTCHours()) +
    two(date.getUTCMinutes()) + two(date.getUTCSeconds()) + "Z";
  return year >= 1950 && year < 2050
    ? tlv(0x17, new TextEncoder().encode(two(year % 100) + rest))
    : tlv(0x18, new TextEncoder().encode(String(year).padStart(4, "0") + rest));
}

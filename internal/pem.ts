/**
 * Certificate encodings of the handshake and of TLS stacks: handshake field 6 (base64 of the
 * DER, no padding) and PEM. Kept apart from mtls.ts, which builds certificates, so that a host
 * or plugin without AutoMTLS never loads the ASN.1 packages (about 15 ms of start-up).
 *
 * @module
 */

/**
 * Encodes a certificate for handshake field 6: standard base64 without padding or newlines
 * (Go's `base64.RawStdEncoding`).
 */
export function encodeHandshakeCert(der: Uint8Array): string {
  return toBase64(der).replace(/=+$/, "");
}

/**
 * Decodes handshake field 6 to DER. Accepts unpadded (what Go sends) or padded standard base64.
 * Throws `TypeError` when the text is not base64 or does not decode to a DER SEQUENCE.
 */
export function decodeHandshakeCert(text: string): Uint8Array {
  const padded = /=$/.test(text);
  // Length rules: padded text comes in whole quads; unpadded text never leaves 1 spare char.
  if (
    !/^[A-Za-z0-9+/]+={0,2}$/.test(text) ||
    (padded ? text.length % 4 !== 0 : text.length % 4 === 1)
  ) {
    throw new TypeError("handshake certificate is not standard base64");
  }
  const der = fromBase64(text);
  if (der[0] !== 0x30) throw new TypeError("handshake certificate is not a DER SEQUENCE");
  return der;
}

/** Wraps DER bytes in a PEM "CERTIFICATE" block (64-char lines, trailing newline). */
export function derToPem(der: Uint8Array): string {
  return pemBlock("CERTIFICATE", der);
}

/**
 * Extracts the DER bytes of the first PEM "CERTIFICATE" block in `pem`.
 * Throws `TypeError` if there is no such block or its body is not base64.
 */
export function pemToDer(pem: string): Uint8Array {
  const match = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/.exec(pem);
  const body = match?.[1].replace(/\s+/g, "");
  if (!body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw new TypeError("no PEM CERTIFICATE block found");
  }
  return fromBase64(body);
}

/** A PEM block of `type` around DER bytes (64-character lines, trailing newline). */
export function pemBlock(type: string, der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Decodes text already checked to be standard base64 (atob also accepts it unpadded). */
function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

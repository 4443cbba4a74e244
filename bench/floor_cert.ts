/**
 * The floor plugins' AutoMTLS certificate (bench/floor_plugin.ts, bench/grpcjs_floor_plugin.ts):
 * a self-signed P-521 certificate for "localhost" made with WebCrypto and a few lines of DER, as
 * go-plugin and plugwire make theirs, so that neither floor pulls a certificate library.
 *
 * @module
 */

function der(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const len = n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  let at = 1 + len.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const text = (s: string) => new TextEncoder().encode(s);
function derInt(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return der(0x02, ...(v[0] & 0x80 ? [new Uint8Array([0]), v] : [v]));
}
const seq = (...p: Uint8Array[]): Uint8Array<ArrayBuffer> => der(0x30, ...p);
const time = (d: Date) => der(0x17, text(d.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z"));
/** Standard base64 of bytes. */
export const b64 = (b: Uint8Array): string => btoa(String.fromCharCode(...b));
/** PEM armour of DER bytes. */
export const pem = (label: string, b: Uint8Array): string =>
  `-----BEGIN ${label}-----\n${b64(b).match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;

/** A self-signed P-521 / ecdsa-with-SHA512 certificate for "localhost", like go-plugin's. */
export async function certificate(): Promise<{ cert: Uint8Array; key: string }> {
  const algo = { name: "ECDSA", namedCurve: "P-521" };
  const keys = await crypto.subtle.generateKey(algo, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const sigAlg = seq(hex("06082a8648ce3d040304"));
  const name = seq(der(0x31, seq(hex("0603550403"), der(0x0c, text("localhost")))));
  const now = Date.now();
  const tbs = seq(
    hex("a003020102"),
    derInt(crypto.getRandomValues(new Uint8Array(16))),
    sigAlg,
    name,
    seq(time(new Date(now - 30_000)), time(new Date(now + 262_800 * 60_000))),
    name,
    spki,
    der(
      0xa3,
      seq(
        seq(hex("0603551d13"), hex("0101ff"), der(0x04, seq(hex("0101ff")))),
        seq(hex("0603551d11"), der(0x04, seq(der(0x82, text("localhost"))))),
      ),
    ),
  );
  const raw = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-512" }, keys.privateKey, tbs),
  );
  const sig = seq(derInt(raw.subarray(0, 66)), derInt(raw.subarray(66)));
  const cert = seq(tbs, sigAlg, der(0x03, new Uint8Array([0]), sig));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { cert, key: pem("PRIVATE KEY", pkcs8) };
}

/**
 * API keys. Hono's bearer-auth answers 401 for a wrong key and reads one header only; the
 * gateway needs 401 (no credentials, with `WWW-Authenticate`) versus 403 (a wrong key), a
 * second configurable header and an opt-in query parameter, so the check is written here.
 * Keys are kept only as SHA-256 digests and compared with `timingSafeEqual`, every key every
 * time; they are never logged.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

/** A set of accepted keys, as digests. */
export class KeySet {
  readonly #digests: Uint8Array[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  /** No keys: nothing to check. */
  get empty(): boolean {
    return this.#digests.length === 0;
  }

  /** Both sets' keys. */
  union(other: KeySet): KeySet {
    const out = new KeySet([]);
    out.#digests.push(...this.#digests, ...other.#digests);
    return out;
  }

  /** True when `key` is one of the keys; takes the same time whichever matches. */
  has(key: string): boolean {
    const d = digest(key);
    let found = false;
    for (const k of this.#digests) found = timingSafeEqual(k, d) || found;
    return found;
  }
}

function digest(key: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(key, "utf8").digest());
}

/** Where keys may come from. */
export interface KeySources {
  /** A header besides `Authorization: Bearer` (looked up case-insensitively). */
  header?: string;
  /** A query parameter; off unless configured. */
  queryParam?: string;
}

/** The key a request presents, if any: Bearer first, then the header, then the query. */
export function presentedKey(request: Request, sources: KeySources): string | undefined {
  const authorization = request.headers.get("authorization");
  if (authorization) {
    const match = /^bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) return match[1].trim();
  }
  if (sources.header) {
    const value = request.headers.get(sources.header);
    if (value) return value.trim();
  }
  if (sources.queryParam) {
    const value = new URL(request.url).searchParams.get(sources.queryParam);
    if (value) return value;
  }
  return undefined;
}

/** The outcome of a check. */
export type AuthOutcome = "ok" | "missing" | "wrong";

/** Checks a request against a key set (an empty set lets everything in). */
export function checkKey(request: Request, keys: KeySet, sources: KeySources): AuthOutcome {
  if (keys.empty) return "ok";
  const key = presentedKey(request, sources);
  if (key === undefined) return "missing";
  return keys.has(key) ? "ok" : "wrong";
}

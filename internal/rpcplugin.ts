/**
 * The RPCPlugin flavour of the protocol (docs/protocol.md §10): a host that sets `PLUGIN_TRANSPORTS`
 * speaks RPCPlugin. It is go-plugin's handshake with three differences: the host lists the
 * transports it accepts, TLS is mandatory, and the certificate in the handshake is padded
 * base64. A plugin must also exit when no protocol version is in common, where go-plugin
 * serves its lowest and lets the host refuse.
 *
 * @module
 */

import type { Network } from "./handshake.ts";

/** The environment variable whose presence means "RPCPlugin". */
export const TRANSPORTS_ENV = "PLUGIN_TRANSPORTS";

/**
 * The transport to listen on: the first of the host's list that plugwire speaks, unless the
 * plugin's own preference is in the list. Undefined when the list names none.
 */
export function chooseTransport(list: string, preferred: Network | undefined): Network | undefined {
  const offered = list.split(",").map((t) => t.trim()).filter((t) => t === "unix" || t === "tcp");
  if (preferred && offered.includes(preferred)) return preferred;
  return offered[0] as Network | undefined;
}

/** RPCPlugin's certificate encoding: standard base64 with its `=` padding. */
export function padBase64(unpadded: string): string {
  return unpadded + "=".repeat((4 - (unpadded.length % 4)) % 4);
}

/**
 * What the counter host and plugin share: go-plugin's examples/bidirectional handshake.
 *
 * @module
 */

import type { HandshakeConfig } from "../../host.ts";

/** go-plugin's examples use this cookie and protocol version 1. */
export const COUNTER_HANDSHAKE: HandshakeConfig = {
  protocolVersion: 1,
  magicCookieKey: "BASIC_PLUGIN",
  magicCookieValue: "hello",
};

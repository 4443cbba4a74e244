/**
 * Why a program might not speak the protocol: the note go-plugin appends to an unrecognised
 * handshake (internal/cmdrunner notes), with the file's mode, owner and executable format.
 *
 * @module
 */

import { readFileHead, statFile } from "./runtime.ts";

function modeString(mode: number): string {
  const chars = "rwxrwxrwx";
  let out = "";
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? chars[i] : "-";
  return "-" + out;
}

/** Names the executable format from the first bytes of a file. */
export function executableFormat(head: Uint8Array): string {
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    const machine = head[18] | (head[19] << 8);
    const names: Record<number, string> = { 0x3e: "x86-64", 0xb7: "aarch64", 0x03: "x86" };
    return `ELF, machine ${names[machine] ?? `0x${machine.toString(16)}`}`;
  }
  if (head[0] === 0x23 && head[1] === 0x21) {
    const line = new TextDecoder().decode(head).split("\n")[0];
    return `script (${line})`;
  }
  if (head[0] === 0x4d && head[1] === 0x5a) return "PE (Windows)";
  const magic = (head[0] << 24 | head[1] << 16 | head[2] << 8 | head[3]) >>> 0;
  if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic)) {
    return "Mach-O (macOS)";
  }
  return "unknown";
}

/** The diagnostic block for a plugin that printed no handshake line. */
export async function handshakeDiagnostics(path: string): Promise<string> {
  let text = "This usually means\n" +
    "  the plugin was not compiled for this architecture,\n" +
    "  the plugin is missing dynamic-link libraries necessary to run,\n" +
    "  the plugin is not executable by this process due to file permissions, or\n" +
    "  the plugin failed to negotiate the initial go-plugin protocol handshake\n";
  const stat = await statFile(path);
  text += `\nAdditional notes about plugin:\n  Path: ${path}\n`;
  if (!stat) return text + "  (the file could not be read)\n";
  text += `  Mode: ${modeString(stat.mode)}\n  Owner: ${stat.uid}, group ${stat.gid}\n`;
  try {
    text += `  Format: ${executableFormat(await readFileHead(path, 128))}\n`;
  } catch {
    // Unreadable: mode and owner above already say why.
  }
  return text;
}

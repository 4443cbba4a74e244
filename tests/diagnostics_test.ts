// Tests for internal/diagnostics.ts: the note go-plugin appends to an unrecognised handshake
// (internal/cmdrunner `unrecognizedRemotePluginMessage` and notes_unix.go), with the file's
// mode, owner and executable format.
import assert from "node:assert/strict";
import { executableFormat, handshakeDiagnostics } from "../internal/diagnostics.ts";
import { PluginError } from "../internal/errors.ts";
import { decodeHandshakeCert } from "../internal/mtls.ts";
import { parseHandshakeLine } from "../internal/handshake.ts";

/** go-plugin's fixed text, up to where its additional notes begin. */
const GO_THIS_USUALLY_MEANS = "This usually means\n" +
  "  the plugin was not compiled for this architecture,\n" +
  "  the plugin is missing dynamic-link libraries necessary to run,\n" +
  "  the plugin is not executable by this process due to file permissions, or\n" +
  "  the plugin failed to negotiate the initial go-plugin protocol handshake\n";

/** Runs `fn` in a fresh temp directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "plugwire-diag-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function head(path: string, length = 128): Promise<Uint8Array> {
  const file = await Deno.open(path);
  try {
    const buf = new Uint8Array(length);
    const n = await file.read(buf);
    return buf.subarray(0, n ?? 0);
  } finally {
    file.close();
  }
}

/** A 64-byte ELF header whose e_machine (bytes 18-19, little-endian) is `machine`. */
function elfHeader(machine: number): Uint8Array {
  const bytes = new Uint8Array(64);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  bytes[18] = machine & 0xff;
  bytes[19] = machine >> 8;
  return bytes;
}

// --- executableFormat -------------------------------------------------------------------------

Deno.test("executableFormat() names the machine of the running Deno's ELF header", async () => {
  if (Deno.build.os !== "linux") return;
  const expected: Record<string, string> = { x86_64: "x86-64", aarch64: "aarch64" };
  assert.equal(
    executableFormat(await head(Deno.execPath())),
    `ELF, machine ${expected[Deno.build.arch]}`,
  );
});

Deno.test("executableFormat() names ELF machines x86-64, aarch64, x86 and others in hex", () => {
  assert.equal(executableFormat(elfHeader(0x3e)), "ELF, machine x86-64");
  assert.equal(executableFormat(elfHeader(0xb7)), "ELF, machine aarch64");
  assert.equal(executableFormat(elfHeader(0x03)), "ELF, machine x86");
  assert.equal(executableFormat(elfHeader(0x28)), "ELF, machine 0x28"); // 32-bit ARM
  assert.equal(executableFormat(elfHeader(0xf3)), "ELF, machine 0xf3"); // RISC-V
});

Deno.test("executableFormat() shows the interpreter line of a #! script", () => {
  const enc = new TextEncoder();
  assert.equal(executableFormat(enc.encode("#!/bin/sh\necho hi\n")), "script (#!/bin/sh)");
  assert.equal(
    executableFormat(enc.encode("#!/usr/bin/env -S deno run -A\nconsole.log(1)\n")),
    "script (#!/usr/bin/env -S deno run -A)",
  );
});

Deno.test("executableFormat() recognises Mach-O magic numbers", () => {
  const withMagic = (...magic: number[]) => {
    const bytes = new Uint8Array(32);
    bytes.set(magic);
    return bytes;
  };
  // 64- and 32-bit little-endian (as on disk for x86-64/arm64), big-endian, and universal.
  for (
    const magic of [
      [0xcf, 0xfa, 0xed, 0xfe],
      [0xce, 0xfa, 0xed, 0xfe],
      [0xfe, 0xed, 0xfa, 0xcf],
      [0xfe, 0xed, 0xfa, 0xce],
      [0xca, 0xfe, 0xba, 0xbe],
    ]
  ) {
    assert.equal(executableFormat(withMagic(...magic)), "Mach-O (macOS)", magic.join(","));
  }
});

Deno.test("executableFormat() recognises the PE (Windows) MZ header", () => {
  const bytes = new Uint8Array(64);
  bytes.set([0x4d, 0x5a, 0x90, 0x00]);
  assert.equal(executableFormat(bytes), "PE (Windows)");
});

Deno.test("executableFormat() says unknown for anything else", () => {
  assert.equal(executableFormat(new Uint8Array()), "unknown");
  assert.equal(executableFormat(new Uint8Array([0, 1, 2, 3])), "unknown");
  assert.equal(executableFormat(new TextEncoder().encode("hello world\n")), "unknown");
  assert.equal(executableFormat(new Uint8Array([0x7f, 0x45, 0x4c])), "unknown"); // truncated ELF
});

// --- handshakeDiagnostics ---------------------------------------------------------------------

Deno.test("handshakeDiagnostics() explains an executable script: path, mode, owner, format", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/my-plugin`;
    await Deno.writeTextFile(path, "#!/bin/sh\necho not a plugin\n");
    await Deno.chmod(path, 0o755);
    const text = await handshakeDiagnostics(path);
    assert.ok(text.startsWith(GO_THIS_USUALLY_MEANS), text);
    assert.ok(text.includes("\nAdditional notes about plugin:\n"), text);
    assert.ok(text.includes(`  Path: ${path}\n`), text);
    assert.ok(text.includes("  Mode: -rwxr-xr-x\n"), text);
    assert.ok(text.includes(`  Owner: ${Deno.uid()}`), text);
    assert.ok(text.includes("  Format: script (#!/bin/sh)\n"), text);
  });
});

Deno.test("handshakeDiagnostics() shows a non-executable mode as Go's FileMode does", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/plugin.bin`;
    await Deno.writeFile(path, elfHeader(0xb7));
    for (
      const [mode, shown] of [
        [0o644, "-rw-r--r--"],
        [0o600, "-rw-------"],
        [0o750, "-rwxr-x---"],
        [0o000, "----------"],
      ] as const
    ) {
      await Deno.chmod(path, mode);
      const text = await handshakeDiagnostics(path);
      assert.ok(text.includes(`  Mode: ${shown}\n`), `${mode.toString(8)}: ${text}`);
    }
  });
});

Deno.test("handshakeDiagnostics() names the format of the running Deno binary", async () => {
  const text = await handshakeDiagnostics(Deno.execPath());
  assert.ok(text.startsWith(GO_THIS_USUALLY_MEANS), text);
  assert.ok(text.includes(`  Path: ${Deno.execPath()}\n`), text);
  assert.match(text, /\n {2}Mode: -r.x.{6}\n/);
  if (Deno.build.os === "linux") assert.match(text, /\n {2}Format: ELF, machine \S+\n/);
});

Deno.test("handshakeDiagnostics() says a missing file could not be read", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/missing-plugin`;
    const text = await handshakeDiagnostics(path);
    assert.ok(text.startsWith(GO_THIS_USUALLY_MEANS), text);
    assert.ok(text.includes(path), text);
    assert.ok(text.includes("could not be read"), text);
    assert.ok(!text.includes("Mode:"), text);
    assert.ok(!text.includes("Format:"), text);
  });
});

Deno.test("handshakeDiagnostics() output completes an unrecognized-handshake error", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/chatty-plugin`;
    await Deno.writeTextFile(path, "#!/bin/sh\necho hello\n");
    await Deno.chmod(path, 0o755);
    const diagnostics = await handshakeDiagnostics(path);
    let caught: unknown;
    try {
      parseHandshakeLine("hello\n", {
        hostVersions: [1],
        eof: true,
        diagnostics,
        decodeCert: decodeHandshakeCert,
      });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof PluginError);
    assert.equal(caught.code, "unrecognized-handshake");
    assert.ok(
      caught.message.startsWith(
        "Unrecognized remote plugin message: hello\n" +
          "Failed to read any lines from plugin's stdout\n" + GO_THIS_USUALLY_MEANS,
      ),
      caught.message,
    );
    assert.ok(caught.message.includes(`  Path: ${path}`), caught.message);
    assert.ok(caught.message.includes("  Format: script (#!/bin/sh)"), caught.message);
  });
});

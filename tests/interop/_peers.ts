/**
 * The real interop peers (see tests/interop/README.md): built or found by `peers.sh`, which is
 * idempotent and cached (about 0.1 s when nothing changed, about 40 s cold), and described by
 * `.peers/peers.env`.
 *
 * Every interop test file awaits {@link peers} at load time. When `peers.sh` cannot build the
 * peers (no Go or Python, no registry, a failed build), {@link peersMissing} holds the reason
 * and the suite fails with it: an earlier `peers.env` is not used in its place, so a peer that
 * stopped building is seen. Only RPCPlugin, which the Go module proxy refuses, may be missing:
 * peers.sh names it as blocked and its test says why it did not run.
 *
 * @module
 */

/** Paths from peers.env. */
export interface Peers {
  PEERS_DIR: string;
  GO_EXAMPLE_KV_HOST: string;
  GO_EXAMPLE_KV_PLUGIN: string;
  GO_EXAMPLE_BIDI_HOST: string;
  GO_EXAMPLE_BIDI_PLUGIN: string;
  GO_FIXTURE_HOST: string;
  GO_FIXTURE_PLUGIN: string;
  PY_VENV_PYTHON: string;
  PY_PLUGIN_SDIST: string;
  PY_GREETER_PLUGIN: string;
  PY_HOST_KV: string;
  PY_KV_STUBS: string;
  PYVIDER_PYTHON: string;
  PYVIDER_HOST: string;
  /** A plugin of ours on pyvider-rpcplugin (the package ships no example). */
  PYVIDER_PLUGIN: string;
  /** Python of the venv holding hipcheck-sdk (see peers.sh). */
  HC_VENV_PYTHON: string;
  /** The unpacked hipcheck-sdk sdist. */
  HC_SDK_SDIST: string;
  /** The SDK's own example plugin `mitre/example` (tests/example-plugin/test_main.py). */
  HC_EXAMPLE_PLUGIN: string;
  RPCPLUGIN_COUNT_SERVER?: string;
  RPCPLUGIN_COUNT_CLIENT?: string;
}

const here = new URL("./", import.meta.url);
/** tests/interop/, absolute, with a trailing slash. */
export const INTEROP_DIR: string = here.pathname;
/** The repository root, absolute, with a trailing slash. */
export const REPO_DIR: string = new URL("../../", import.meta.url).pathname;
const ENV_FILE = new URL(".peers/peers.env", here).pathname;

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

const REQUIRED: readonly (keyof Peers)[] = [
  "PEERS_DIR",
  "GO_EXAMPLE_KV_HOST",
  "GO_EXAMPLE_KV_PLUGIN",
  "GO_EXAMPLE_BIDI_HOST",
  "GO_EXAMPLE_BIDI_PLUGIN",
  "GO_FIXTURE_HOST",
  "GO_FIXTURE_PLUGIN",
  "PY_VENV_PYTHON",
  "PY_PLUGIN_SDIST",
  "PY_GREETER_PLUGIN",
  "PY_HOST_KV",
  "PY_KV_STUBS",
  "PYVIDER_PYTHON",
  "PYVIDER_HOST",
  "PYVIDER_PLUGIN",
  "HC_VENV_PYTHON",
  "HC_SDK_SDIST",
  "HC_EXAMPLE_PLUGIN",
];

/**
 * Runs `peers.sh` (unless `PLUGWIRE_INTEROP_NO_BUILD=1`) and reads peers.env. Returns the peers,
 * or the reason they are not there.
 */
async function ensurePeers(): Promise<{ peers?: Peers; missing?: string }> {
  let buildNote = "";
  if (Deno.env.get("PLUGWIRE_INTEROP_NO_BUILD") !== "1") {
    const out = await new Deno.Command("bash", {
      args: [`${INTEROP_DIR}peers.sh`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output().catch((err: Error) => ({
      success: false,
      stderr: new TextEncoder().encode(err.message),
    }));
    if (!out.success) {
      const tail = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-8).join("\n  ");
      buildNote = `bash tests/interop/peers.sh failed:\n  ${tail}`;
    }
  }
  let text: string;
  try {
    text = await Deno.readTextFile(ENV_FILE);
  } catch {
    return {
      missing: `interop peers unavailable: no ${ENV_FILE}` + (buildNote ? `; ${buildNote}` : "") +
        " (run `bash tests/interop/peers.sh`; it needs go, python3 and the Go proxy/PyPI)",
    };
  }
  if (buildNote) return { missing: buildNote };
  const env = parseEnv(text);
  const absent = REQUIRED.filter((k) => !env[k]);
  if (absent.length) return { missing: `peers.env lacks ${absent.join(", ")}` };
  return { peers: env as unknown as Peers };
}

const ensured = await ensurePeers();

/** Why the peers are not there (the interop suite then fails), or undefined. */
export const peersMissing: string | undefined = ensured.missing;

/** The peers. Only read it in tests that are not ignored (see {@link peersMissing}). */
export const peers: Peers = ensured.peers ?? ({} as Peers);

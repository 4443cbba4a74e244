#!/usr/bin/env bash
# Builds or installs every real peer of the interop suite into tests/interop/.peers/ (git-ignored)
# and prints the absolute paths it produced as NAME=PATH lines on stdout; the same lines are
# written to tests/interop/.peers/peers.env. Progress goes to stderr.
#
# Each component is cached under a key (tool versions, pinned package versions, hash of our own
# fixture sources); a repeat run with nothing changed only checks keys and takes about a second.
#
#   bash tests/interop/peers.sh            # build what is missing or stale
#   bash tests/interop/peers.sh --force    # rebuild everything
#
# Environment:
#   PEERS_DIR        output directory (default tests/interop/.peers)
#   PEERS_RPCPLUGIN  1 = also try RPCPlugin Go v0.3.1 (go.rpcplugin.org is refused by the Go
#                    module proxy reachable here, so it is off by default)
# Needs: go (1.25+), python3 (3.10+, with venv), npm only when the committed Go stubs are stale.
set -euo pipefail

INTEROP="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INTEROP/../.." && pwd)"
PEERS="${PEERS_DIR:-$INTEROP/.peers}"
mkdir -p "$PEERS"
PEERS="$(cd "$PEERS" && pwd)"
FIXTURES="$INTEROP/go"

GO_PLUGIN_VERSION=v1.8.0
PY_PLUGIN_VERSION=0.1.0
# Pinned Python packages (python-plugin's own deps are grpclib[protobuf], protobuf, cryptography;
# grpcio-tools only generates the KV stubs for pyhost_kv.py).
PY_PINS=(
  "python-plugin==$PY_PLUGIN_VERSION"
  "grpclib==0.4.9"
  "protobuf==7.36.2"
  "cryptography==50.0.2"
  "grpcio-tools==1.85.1"
  "hatchling==1.33.0" # python-plugin's build backend: lets `pip download` of the sdist skip build isolation
)
# Hipcheck's Python SDK, in a venv of its own: its declared deps are dev tools (pytest, sphinx,
# grpcio-tools, datamodel-code-generator...), so it goes in with --no-deps and only what it imports
# at run time is added, at the versions of the SDK's own uv.lock (its pb2 needs protobuf 5.29+).
# pytest: the example plugin imports it. hatchling: the sdist's build backend (see build_python).
HC_SDK_VERSION=0.2.1
HC_PINS=(
  "grpcio==1.70.0"
  "protobuf==5.29.3"
  "pydantic==2.10.6"
  "pytest==8.3.5"
  "hatchling==1.33.0"
)
RPCPLUGIN_VERSION=v0.3.1
# pyvider-rpcplugin, a go-plugin-style host on grpcio that sets only the magic cookie; its own
# venv (grpcio and protobuf versions of its own), every package pinned.
PYVIDER_PINS=(
  "pyvider-rpcplugin==0.5.5"
  "attrs==26.1.0"
  "beautifulsoup4==4.15.0"
  "cffi==2.1.1"
  "cryptography==50.0.2"
  "google==3.0.0"
  "grpcio==1.85.3"
  "grpcio-health-checking==1.85.1"
  "protobuf==7.36.2"
  "provide-foundation==0.4.10"
  "pycparser==3.12"
  "soupsieve==4.1.3"
  "structlog==26.1.0"
  "tomli_w==1.2.0"
  "typing_extensions==4.16.0"
)
SCHEMA=1 # bump when the layout of .peers changes

export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" >&2; exit 0 ;;
    *) echo "peers.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

T0=${EPOCHREALTIME/./}
log() {
  local ms=$(((${EPOCHREALTIME/./} - T0) / 1000))
  printf '[peers.sh %4d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2
}
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go not found"
command -v python3 >/dev/null || die "python3 not found"

# One run at a time per peers dir (parallel test jobs may all call this script).
exec 9>"$PEERS/.lock"
flock 9

# Scratch dirs live in $PEERS/.tmp.*; under the lock nobody else uses them.
cleanup() { rm -rf "$PEERS"/.tmp.*; }
cleanup
trap cleanup EXIT
mktmp() { mktemp -d "$PEERS/.tmp.XXXXXX"; }

GOVERSION="$(go env GOVERSION)"
PYVERSION="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
BIN="$PEERS/bin"
mkdir -p "$BIN"

keyof() { printf '%s\n' "$@" | sha256sum | cut -c1-32; }
fresh() { [[ $FORCE == 0 && -f "$1" && "$(cat "$1")" == "$2" ]]; } # fresh STAMPFILE KEY

# ---------------------------------------------------------------------------------------------
# 1. go-plugin v1.8.0 examples, from the Go module proxy.
GOEX_KEY="$(keyof "$SCHEMA" "$GOVERSION" "$GO_PLUGIN_VERSION")"
build_goplugin_examples() {
  local t
  t="$(mktmp)"
  mkdir -p "$t/grpc" "$t/bidi"
  GOBIN="$t/grpc" go install \
    "github.com/hashicorp/go-plugin/examples/grpc@$GO_PLUGIN_VERSION" \
    "github.com/hashicorp/go-plugin/examples/grpc/plugin-go-grpc@$GO_PLUGIN_VERSION"
  GOBIN="$t/bidi" go install \
    "github.com/hashicorp/go-plugin/examples/bidirectional@$GO_PLUGIN_VERSION" \
    "github.com/hashicorp/go-plugin/examples/bidirectional/plugin-go-grpc@$GO_PLUGIN_VERSION"
  mv -f "$t/grpc/grpc" "$BIN/kv-host-go"
  mv -f "$t/grpc/plugin-go-grpc" "$BIN/kv-plugin-go-grpc"
  mv -f "$t/bidi/bidirectional" "$BIN/counter-host-go"
  mv -f "$t/bidi/plugin-go-grpc" "$BIN/counter-plugin-go-grpc"
  echo "$GOEX_KEY" >"$BIN/.go-plugin-examples.key"
}

# ---------------------------------------------------------------------------------------------
# 2. Our Go fixtures (tests/interop/go): gohost, goplugin and gobench (bench/run.ts's Go side).
if ! (cd "$REPO/proto" && sha256sum --check --status "$FIXTURES/gen/PROTO_SHA256SUMS") 2>/dev/null; then
  log "WARNING: proto/kv or proto/grpctest changed since tests/interop/go/gen was generated: regenerating (commit the result)"
  bash "$FIXTURES/gen.sh"
fi
FIX_HASH="$(cd "$FIXTURES" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name PROTO_SHA256SUMS \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)"
FIX_KEY="$(keyof "$SCHEMA" "$GOVERSION" "$FIX_HASH")"
build_fixtures() {
  local t
  t="$(mktmp)"
  (cd "$FIXTURES" && go build -o "$t/" ./cmd/gohost ./cmd/goplugin ./cmd/gobench)
  mv -f "$t/gohost" "$BIN/gohost"
  mv -f "$t/goplugin" "$BIN/goplugin"
  mv -f "$t/gobench" "$BIN/gobench"
  echo "$FIX_KEY" >"$BIN/.fixtures.key"
}

# ---------------------------------------------------------------------------------------------
# 3. python-plugin: a venv with the pinned packages, grpclib stubs for proto/kv/kv.proto, and the
#    unpacked sdist (the wheel holds only the pyplugin package; examples/ are in the sdist).
VENV="$PEERS/venv"
PY_KEY="$(keyof "$SCHEMA" "$PYVERSION" "${PY_PINS[@]}")"
PYGEN_KEY="$(keyof "$PY_KEY" "$(sha256sum "$REPO/proto/kv/kv.proto")")"
SDIST="$PEERS/python-plugin-$PY_PLUGIN_VERSION"
SDIST_KEY="$(keyof "$SCHEMA" "$PY_PLUGIN_VERSION")"
build_python() {
  if ! fresh "$VENV/.key" "$PY_KEY"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PINS[@]}"
    echo "$PY_KEY" >"$VENV/.key"
    log "venv ready: $("$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null |
      grep -iE '^(python-plugin|grpclib|protobuf|cryptography|grpcio-tools) ' | tr -s ' ' | tr '\n' ';')"
  fi
  if ! fresh "$PEERS/pygen/.key" "$PYGEN_KEY"; then
    local t
    t="$(mktmp)"
    mkdir -p "$t/kv"
    "$VENV/bin/python" -m grpc_tools.protoc -I "$REPO/proto/kv" \
      --python_out="$t/kv" --grpclib_python_out="$t/kv" \
      --plugin=protoc-gen-grpclib_python="$VENV/bin/protoc-gen-grpclib_python" kv.proto
    echo "$PYGEN_KEY" >"$t/.key"
    chmod 755 "$t"
    rm -rf "$PEERS/pygen"
    mv "$t" "$PEERS/pygen"
  fi
  if ! fresh "$SDIST/.key" "$SDIST_KEY"; then
    local t
    t="$(mktmp)"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary :all: --no-build-isolation -d "$t" "python-plugin==$PY_PLUGIN_VERSION"
    tar -xzf "$t/python_plugin-$PY_PLUGIN_VERSION.tar.gz" -C "$t"
    [[ -f "$t/python_plugin-$PY_PLUGIN_VERSION/examples/greeter/plugin.py" ]] ||
      die "python-plugin sdist has no examples/greeter/plugin.py"
    if [[ ! -f "$t/python_plugin-$PY_PLUGIN_VERSION/fixtures/example_kv/kv_plugin.py" ]]; then
      log "note: the python-plugin sdist lacks fixtures/example_kv/kv_plugin.py and generated/kv_* (its .gitignore has kv_*): only examples/greeter is runnable"
    fi
    rm -rf "$SDIST"
    mv "$t/python_plugin-$PY_PLUGIN_VERSION" "$SDIST"
    echo "$SDIST_KEY" >"$SDIST/.key"
  fi
}

# ---------------------------------------------------------------------------------------------
# 3b. hipcheck-sdk: its venv and the unpacked sdist, whose tests/example-plugin/test_main.py is
#     the SDK's own example plugin mitre/example (the wheel does not ship it).
HC_VENV="$PEERS/hipcheck-venv"
HC_KEY="$(keyof "$SCHEMA" "$PYVERSION" "hipcheck-sdk==$HC_SDK_VERSION" "${HC_PINS[@]}")"
HC_SDIST="$PEERS/hipcheck_sdk-$HC_SDK_VERSION"
HC_SDIST_KEY="$(keyof "$SCHEMA" "$HC_SDK_VERSION")"
build_hipcheck() {
  if ! fresh "$HC_VENV/.key" "$HC_KEY"; then
    rm -rf "$HC_VENV"
    python3 -m venv "$HC_VENV"
    "$HC_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${HC_PINS[@]}"
    "$HC_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      "hipcheck-sdk==$HC_SDK_VERSION"
    echo "$HC_KEY" >"$HC_VENV/.key"
  fi
  if ! fresh "$HC_SDIST/.key" "$HC_SDIST_KEY"; then
    local t
    t="$(mktmp)"
    "$HC_VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary :all: --no-build-isolation -d "$t" "hipcheck-sdk==$HC_SDK_VERSION"
    tar -xzf "$t/hipcheck_sdk-$HC_SDK_VERSION.tar.gz" -C "$t"
    [[ -f "$t/hipcheck_sdk-$HC_SDK_VERSION/tests/example-plugin/test_main.py" ]] ||
      die "hipcheck-sdk sdist has no tests/example-plugin/test_main.py"
    rm -rf "$HC_SDIST"
    mv "$t/hipcheck_sdk-$HC_SDK_VERSION" "$HC_SDIST"
    echo "$HC_SDIST_KEY" >"$HC_SDIST/.key"
  fi
}

# ---------------------------------------------------------------------------------------------
# 3c. pyvider-rpcplugin: a venv of its own (tests/interop/python/pyvider_host.py runs in it).
PYVIDER_VENV="$PEERS/venv-pyvider"
PYVIDER_KEY="$(keyof "$SCHEMA" "$PYVERSION" "${PYVIDER_PINS[@]}")"
build_pyvider() {
  rm -rf "$PYVIDER_VENV"
  python3 -m venv "$PYVIDER_VENV"
  "$PYVIDER_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    "${PYVIDER_PINS[@]}"
  "$PYVIDER_VENV/bin/python" -c "import pyvider.rpcplugin"
  echo "$PYVIDER_KEY" >"$PYVIDER_VENV/.key"
}

# ---------------------------------------------------------------------------------------------
# 4. RPCPlugin Go v0.3.1 (opt-in; see the header).
RPC_DIR="$PEERS/rpcplugin"
RPC_KEY="$(keyof "$SCHEMA" "$GOVERSION" "$RPCPLUGIN_VERSION")"
build_rpcplugin() {
  local t
  t="$(mktmp)"
  (
    cd "$t"
    go mod init plugwire.test/rpcplugin-peer >/dev/null 2>&1
    go get "go.rpcplugin.org/rpcplugin@$RPCPLUGIN_VERSION"
    if ! go build -o bin/ go.rpcplugin.org/rpcplugin/example/count-plugin-server \
      go.rpcplugin.org/rpcplugin/example/count-plugin-client 2>build.log; then
      cat build.log >&2
      echo "retrying with golang.org/x/sys, x/net at latest" >&2
      go get golang.org/x/sys@latest golang.org/x/net@latest
      go build -o bin/ go.rpcplugin.org/rpcplugin/example/count-plugin-server \
        go.rpcplugin.org/rpcplugin/example/count-plugin-client
    fi
  )
  rm -rf "$RPC_DIR"
  mv "$t" "$RPC_DIR"
  echo "$RPC_KEY" >"$RPC_DIR/.key"
}

# ---------------------------------------------------------------------------------------------
# Run the stale parts in parallel (2 cores: the Go builds share the build cache).
declare -A JOBS=()
start_job() { # start_job NAME FUNCTION
  log "building $1"
  ("$2") >"$PEERS/.log.$1" 2>&1 &
  JOBS[$1]=$!
}
fresh "$BIN/.go-plugin-examples.key" "$GOEX_KEY" && [[ -x "$BIN/kv-host-go" ]] ||
  start_job go-plugin-examples build_goplugin_examples
fresh "$BIN/.fixtures.key" "$FIX_KEY" && [[ -x "$BIN/gohost" && -x "$BIN/goplugin" && -x "$BIN/gobench" ]] ||
  start_job go-fixtures build_fixtures
fresh "$VENV/.key" "$PY_KEY" && fresh "$PEERS/pygen/.key" "$PYGEN_KEY" && fresh "$SDIST/.key" "$SDIST_KEY" ||
  start_job python-plugin build_python
fresh "$HC_VENV/.key" "$HC_KEY" && fresh "$HC_SDIST/.key" "$HC_SDIST_KEY" ||
  start_job hipcheck-sdk build_hipcheck
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "pyvider-rpcplugin needs python3 >= 3.11 (found $PYVERSION)"
fresh "$PYVIDER_VENV/.key" "$PYVIDER_KEY" || start_job pyvider build_pyvider
if [[ "${PEERS_RPCPLUGIN:-0}" == 1 ]]; then
  fresh "$RPC_DIR/.key" "$RPC_KEY" || start_job rpcplugin build_rpcplugin
fi

failed=()
for name in "${!JOBS[@]}"; do
  if wait "${JOBS[$name]}"; then
    log "$name done"
  else
    if [[ $name == rpcplugin ]]; then
      # The one peer allowed to be missing: the Go module proxy refuses go.rpcplugin.org.
      log "BLOCKED: RPCPlugin could not be built (log: $PEERS/.log.$name):"
      tail -3 "$PEERS/.log.$name" >&2
    else
      log "FAILED: $name; its log ($PEERS/.log.$name) ends with:"
      tail -20 "$PEERS/.log.$name" >&2
      failed+=("$name")
    fi
  fi
done
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"

# ---------------------------------------------------------------------------------------------
ENV_LINES=(
  "PEERS_DIR=$PEERS"
  "GO_EXAMPLE_KV_HOST=$BIN/kv-host-go"
  "GO_EXAMPLE_KV_PLUGIN=$BIN/kv-plugin-go-grpc"
  "GO_EXAMPLE_BIDI_HOST=$BIN/counter-host-go"
  "GO_EXAMPLE_BIDI_PLUGIN=$BIN/counter-plugin-go-grpc"
  "GO_FIXTURE_HOST=$BIN/gohost"
  "GO_FIXTURE_PLUGIN=$BIN/goplugin"
  "GO_BENCH=$BIN/gobench"
  "PY_VENV_PYTHON=$VENV/bin/python"
  "PY_PLUGIN_SDIST=$SDIST"
  "PY_GREETER_PLUGIN=$SDIST/examples/greeter/plugin.py"
  "PY_HOST_KV=$INTEROP/python/pyhost_kv.py"
  "PY_KV_STUBS=$PEERS/pygen/kv"
  "PYVIDER_PYTHON=$PYVIDER_VENV/bin/python"
  "PYVIDER_HOST=$INTEROP/python/pyvider_host.py"
  "PYVIDER_PLUGIN=$INTEROP/python/pyvider_plugin.py"
  "HC_VENV_PYTHON=$HC_VENV/bin/python"
  "HC_SDK_SDIST=$HC_SDIST"
  "HC_EXAMPLE_PLUGIN=$HC_SDIST/tests/example-plugin/test_main.py"
)
if [[ -x "$RPC_DIR/bin/count-plugin-server" && -x "$RPC_DIR/bin/count-plugin-client" ]]; then
  ENV_LINES+=("RPCPLUGIN_COUNT_SERVER=$RPC_DIR/bin/count-plugin-server"
    "RPCPLUGIN_COUNT_CLIENT=$RPC_DIR/bin/count-plugin-client")
fi
for l in "${ENV_LINES[@]}"; do
  p="${l#*=}"
  [[ -e "$p" ]] || die "missing peer ${l%%=*}: $p"
done
printf '%s\n' "${ENV_LINES[@]}" >"$PEERS/peers.env.tmp"
mv "$PEERS/peers.env.tmp" "$PEERS/peers.env"
printf '%s\n' "${ENV_LINES[@]}"
log "peers ready ($PEERS/peers.env)"

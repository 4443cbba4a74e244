#!/usr/bin/env bash
# Regenerates the Go stubs in tests/interop/go/gen/ from the repository's own protos
# (proto/kv/kv.proto, proto/grpctest/grpctest.proto) and records the protos' hashes in
# gen/PROTO_SHA256SUMS. The generated code is committed (it is ours: generated from our protos);
# peers.sh re-runs this script when the recorded hashes no longer match the protos.
#
# Tools (installed on first use under tests/interop/.peers/tools, git-ignored):
#   buf 1.75.0 from npm, protoc-gen-go and protoc-gen-go-grpc from the Go module proxy.
# The .proto files are not edited: their Go packages are set with protoc-gen-go's M options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INTEROP="$(dirname "$HERE")"
REPO="$(cd "$INTEROP/../.." && pwd)"
TOOLS="${PEERS_DIR:-$INTEROP/.peers}/tools"

BUF_VERSION=1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12     # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2  # needs google.golang.org/grpc >= 1.64 (go.mod has v1.83.0)
MODULE=plugwire.test/interop
PROTOS=(kv/kv.proto grpctest/grpctest.proto)

log() { echo "[gen.sh] $*" >&2; }

export GOFLAGS="${GOFLAGS:--mod=mod}"
mkdir -p "$TOOLS/bin" "$TOOLS/npm"

if [[ ! -x "$TOOLS/npm/node_modules/.bin/buf" ]] ||
  [[ "$("$TOOLS/npm/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
  log "installing @bufbuild/buf@$BUF_VERSION from npm"
  [[ -f "$TOOLS/npm/package.json" ]] || echo '{"private":true}' >"$TOOLS/npm/package.json"
  npm install --prefix "$TOOLS/npm" --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@$BUF_VERSION" >&2
fi
stamp="$TOOLS/bin/.protoc-gen-versions"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$PROTOC_GEN_GO_VERSION $PROTOC_GEN_GO_GRPC_VERSION" ]]; then
  log "installing protoc-gen-go@$PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  GOBIN="$TOOLS/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
  GOBIN="$TOOLS/bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  echo "$PROTOC_GEN_GO_VERSION $PROTOC_GEN_GO_GRPC_VERSION" >"$stamp"
fi

mopts="Mkv/kv.proto=$MODULE/gen/kvpb;kvpb, Mgrpctest/grpctest.proto=$MODULE/gen/grpctestpb;grpctestpb"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/buf.gen.yaml" <<EOF
version: v2
plugins:
  - local: $TOOLS/bin/protoc-gen-go
    out: $tmp/out
    opt: [module=$MODULE, $mopts]
  - local: $TOOLS/bin/protoc-gen-go-grpc
    out: $tmp/out
    opt: [module=$MODULE, $mopts]
EOF

args=()
for p in "${PROTOS[@]}"; do args+=(--path "proto/$p"); done
log "buf generate ${PROTOS[*]}"
(cd "$REPO" && "$TOOLS/npm/node_modules/.bin/buf" generate proto --template "$tmp/buf.gen.yaml" "${args[@]}")

rm -rf "$HERE/gen"
mv "$tmp/out/gen" "$HERE/gen"
(cd "$REPO/proto" && sha256sum "${PROTOS[@]}") >"$HERE/gen/PROTO_SHA256SUMS"
log "wrote $(cd "$HERE" && find gen -type f | sort | tr '\n' ' ')"

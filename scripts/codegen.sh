#!/usr/bin/env bash
# Regenerates gen/ from proto/ with buf and protoc-gen-es (no protoc download needed).
# Each folder under proto/ is compiled on its own: the KV and counter examples share
# go-plugin's package name "proto" with different messages, as go-plugin's examples do.
#
# With `--proto DIR --out DIR` it compiles a user's own .proto tree (one buf module rooted at
# DIR) into OUT instead, and leaves gen/ alone (scripts/codegen.ts wraps this for `deno task`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.codegen"
# The pins: buf and protoc-gen-es from npm, protoc-gen-es at the runtime version deno.json uses.
BUF_VERSION=1.75.0
PROTOBUF_ES_VERSION=2.17.0
stamp="$tools/.versions"
if [ ! -x "$tools/node_modules/.bin/buf" ] ||
  [ "$(cat "$stamp" 2>/dev/null)" != "$BUF_VERSION $PROTOBUF_ES_VERSION" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --silent --prefix . \
    "@bufbuild/buf@$BUF_VERSION" "@bufbuild/protoc-gen-es@$PROTOBUF_ES_VERSION" \
    "@bufbuild/protobuf@$PROTOBUF_ES_VERSION" >&2)
  echo "$BUF_VERSION $PROTOBUF_ES_VERSION" >"$stamp"
fi

if [ "${1:-}" = "--proto" ]; then
  if [ $# -ne 4 ] || [ "$3" != "--out" ]; then
    echo "usage: codegen.sh [--proto DIR --out DIR]" >&2
    exit 2
  fi
  proto=$(cd "$2" && pwd)
  mkdir -p "$4"
  out=$(cd "$4" && pwd)
  template=$(mktemp -d)
  trap 'rm -rf "$template"' EXIT
  cat > "$template/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $tools/node_modules/.bin/protoc-gen-es
    out: $out
    opt: [target=ts, import_extension=ts]
YAML
  (cd "$proto" && PATH="$tools/node_modules/.bin:$PATH" buf generate --template "$template/buf.gen.yaml" .)
  echo "generated: $(find "$out" -name '*_pb.ts' | wc -l) files in $out" >&2
  exit 0
fi

rm -rf "$root/gen"
for dir in "$root"/proto/*/; do
  name=$(basename "$dir")
  cat > "$tools/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $tools/node_modules/.bin/protoc-gen-es
    out: $root/gen/$name
    opt: [target=ts, import_extension=ts]
YAML
  (cd "$dir" && PATH="$tools/node_modules/.bin:$PATH" buf generate --template "$tools/buf.gen.yaml" .)
done
# protoc-gen-es imports the runtime by bare name; Deno resolves it through deno.json's imports.
echo "generated: $(find "$root/gen" -name '*.ts' | wc -l) files" >&2

#!/usr/bin/env bash
# Regenerates gen/ from proto/ with buf and protoc-gen-es (no protoc download needed).
# Each folder under proto/ is compiled on its own: the KV and counter examples share
# go-plugin's package name "proto" with different messages, as go-plugin's examples do.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.codegen"
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --silent --prefix . \
    @bufbuild/buf@1.75.0 @bufbuild/protoc-gen-es@2.17.0 @bufbuild/protobuf@2.17.0 >&2)
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

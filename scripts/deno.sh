#!/usr/bin/env bash
# Runs the project's pinned Deno, installing it from the npm registry when missing.
# JSR and dl.deno.land are unreachable on the project's machines; npm carries the real binary.
set -euo pipefail
DENO_VERSION=2.9.6
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/node_modules/.bin/deno"
if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null | head -n1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  mkdir -p "$root/.tools"
  (cd "$root/.tools" && npm install --no-audit --no-fund --silent --prefix . "deno@$DENO_VERSION" >&2)
fi
exec "$bin" "$@"

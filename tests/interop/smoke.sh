#!/usr/bin/env bash
# Smoke test of the interop peers on their own (no TypeScript): every Go/Python peer is driven by,
# or drives, another real peer. Builds the peers first (peers.sh, cached).
#
#   bash tests/interop/smoke.sh [-v] [NAME_FILTER]
#
# Prints PASS/FAIL/SKIP per check and a closing line "smoke: N passed, M failed, K skipped".
# Exits 1 if any check failed. Each check runs in its own dir under a temp dir, with TMPDIR set
# to a subdir of it (plugins put their unix sockets there); stray processes are reported as a
# failure and killed, and the temp dir is removed at the end.
set -uo pipefail

INTEROP="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERBOSE=0
FILTER=""
for a in "$@"; do
  case "$a" in
    -v) VERBOSE=1 ;;
    *) FILTER="$a" ;;
  esac
done

env_lines="$(bash "$INTEROP/peers.sh")" || { echo "smoke: peers.sh failed" >&2; exit 1; }
while IFS='=' read -r k v; do
  [[ -n "$k" ]] && printf -v "$k" '%s' "$v"
done <<<"$env_lines"

WORK="$(mktemp -d /tmp/plugwire-smoke.XXXXXX)"

# Every process started here carries TMPDIR=$WORK/<check>/tmp: find any that are still alive.
leftovers() {
  local p pid
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [[ "$pid" == "$$" ]] && continue
    if tr "\0" "\n" 2>/dev/null <"$p/environ" | grep -q "^TMPDIR=$WORK/"; then
      [[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" == Z ]] && continue
      echo "$pid"
    fi
  done
}
cleanup() {
  local p
  leftovers >"$WORK/.left" 2>/dev/null
  for p in $(cat "$WORK/.left"); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PASS=0 FAILN=0 SKIP=0
SOCKS_LEFT=""
# has FILE JQ_PREDICATE: some JSON line of FILE satisfies the predicate (other lines are ignored).
has() { jq -R -n -e "[inputs | fromjson?] | any(.[]; $2)" "$1" >/dev/null 2>&1; }

# check NAME FUNCTION: runs FUNCTION in its own dir; FUNCTION returns non-zero (after echoing a
# reason) on failure, or 99 to skip.
check() {
  local name="$1" fn="$2"
  [[ -n "$FILTER" && "$name" != *"$FILTER"* ]] && return
  local d="$WORK/$name" t0=${EPOCHREALTIME/./} rc reason
  mkdir -p "$d"
  mkdir -p "$d/tmp"
  # TMPDIR per check: plugins put their unix sockets there, and leftovers() finds strays by it.
  (cd "$d" && export TMPDIR="$d/tmp" && "$fn") >"$d/.reason" 2>&1 </dev/null
  rc=$?
  reason="$(cat "$d/.reason")"
  local socks
  socks="$(find "$d/tmp" -type s -printf '%f ' 2>/dev/null)"
  [[ -n "$socks" ]] && SOCKS_LEFT+="$name($socks) "
  local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  if ((rc == 0)); then
    PASS=$((PASS + 1))
    printf 'PASS %-34s %6d ms\n' "$name" "$ms"
  elif ((rc == 99)); then
    SKIP=$((SKIP + 1))
    printf 'SKIP %-34s %s\n' "$name" "$reason"
  else
    FAILN=$((FAILN + 1))
    printf 'FAIL %-34s %6d ms: %s\n' "$name" "$ms" "$(tail -1 <<<"$reason")"
    for f in "$d"/*.out "$d"/*.err; do
      [[ -f "$f" ]] || continue
      echo "  --- $(basename "$f") (last 15 lines)"
      tail -15 "$f" | cut -c1-400 | sed 's/^/  /'
    done
  fi
  if ((VERBOSE)); then
    for f in "$d"/*.out; do [[ -f "$f" ]] && sed "s/^/  [$(basename "$f")] /" "$f"; done
  fi
}

T=60 # seconds allowed to any one peer command
gohost() { timeout "$T" "$GO_FIXTURE_HOST" "$@"; }

# expect_ok NAME.out: every result line is ok, and the plugin was shut down gracefully.
expect_ok() {
  has "$1" '.type=="error"' && { echo "error: $(jq -r 'select(.type=="error") | .step + ": " + .error' "$1" | head -1)"; return 1; }
  has "$1" '.type=="killed" and .graceful==true and .exited==true' || { echo "plugin not shut down gracefully"; return 1; }
}

# ---------------------------------------------------------------------------------------------
# go-plugin's own examples/grpc host + plugin (the baseline).
t_example_kv() {
  KV_PROTO=grpc KV_PLUGIN="$GO_EXAMPLE_KV_PLUGIN" timeout $T "$GO_EXAMPLE_KV_HOST" put hello world >put.out 2>put.err || { echo "put failed"; return 1; }
  KV_PROTO=grpc KV_PLUGIN="$GO_EXAMPLE_KV_PLUGIN" timeout $T "$GO_EXAMPLE_KV_HOST" get hello >get.out 2>get.err || { echo "get failed"; return 1; }
  [[ "$(cat get.out)" == $'world\n\nWritten from plugin-go-grpc' ]] || { echo "get printed: $(cat get.out)"; return 1; }
}

# go-plugin's examples/bidirectional: host serves AddHelper via the broker, plugin dials it.
t_example_bidirectional() {
  local i
  for i in 1 2; do
    COUNTER_PLUGIN="$GO_EXAMPLE_BIDI_PLUGIN" timeout $T "$GO_EXAMPLE_BIDI_HOST" put hello $i >put$i.out 2>put$i.err || { echo "put $i failed: $(cat put$i.out)"; return 1; }
  done
  COUNTER_PLUGIN="$GO_EXAMPLE_BIDI_PLUGIN" timeout $T "$GO_EXAMPLE_BIDI_HOST" get hello >get.out 2>get.err || { echo "get failed"; return 1; }
  [[ "$(cat get.out)" == "3" ]] || { echo "get printed $(cat get.out), want 3"; return 1; }
}

# gohost (ours) drives go-plugin's KV plugin; put and get are separate processes (file in cwd).
gohost_kv() {
  gohost "$@" -plugin "$GO_EXAMPLE_KV_PLUGIN" -mode kv-put k1 'v 1' >put.out 2>put.err || { echo "kv-put exit $?"; return 1; }
  expect_ok put.out || return 1
  gohost "$@" -plugin "$GO_EXAMPLE_KV_PLUGIN" -mode kv-get k1 >get.out 2>get.err || { echo "kv-get exit $?"; return 1; }
  expect_ok get.out || return 1
  has get.out '.type=="kv-get" and .value=="v 1\n\nWritten from plugin-go-grpc"' || { echo "wrong kv-get value"; return 1; }
  has get.out '.type=="connected" and .negotiated_version==1 and .protocol=="grpc" and .network=="unix"' || { echo "bad connected line"; return 1; }
}
t_gohost_kv_plain() { gohost_kv; }
t_gohost_kv_automtls() { gohost_kv -automtls; }

# gohost drives our goplugin through the whole grpctest sequence.
gohost_grpctest() {
  gohost "$@" -plugin "$GO_FIXTURE_PLUGIN" -mode grpctest >run.out 2>run.err || { echo "gohost exit $?"; return 1; }
  expect_ok run.out || return 1
  local s
  for s in ping double printkv bidirectional stdio stream; do
    has run.out ".type==\"$s\" and .ok==true" || { echo "step $s missing"; return 1; }
  done
  has run.out '.type=="stdio" and .stdout=="hello\nworld!" and .stderr=="and some error\n messages!"' || { echo "stdio mismatch"; return 1; }
  has run.out '.type=="stream" and .outputs==[2,4,6,8,10]' || { echo "stream mismatch"; return 1; }
  # Log forwarding: the plugin's hclog JSON line comes back through the host's logger.
  has run.err '."@message"=="PrintKV called" and .foo=="bar" and ."@level"=="info"' || { echo "PrintKV log foo=bar not forwarded"; return 1; }
  has run.err '."@message"=="PrintKV called" and .foo==12' || { echo "PrintKV log foo=12 not forwarded"; return 1; }
}
t_gohost_grpctest_plain() { gohost_grpctest; }
t_gohost_grpctest_automtls() { gohost_grpctest -automtls; }
t_gohost_grpctest_mux() { gohost_grpctest -mux; }
t_gohost_grpctest_automtls_mux() { gohost_grpctest -automtls -mux; }

t_gohost_negotiation() {
  GOPLUGIN_VERSIONS=1,2 gohost -versions 1,2 -plugin "$GO_FIXTURE_PLUGIN" -mode ping >v12.out 2>v12.err || { echo "1,2 failed"; return 1; }
  has v12.out '.type=="connected" and .negotiated_version==2' || { echo "1,2 did not negotiate 2"; return 1; }
  GOPLUGIN_VERSIONS=1,2 gohost -versions 1,3 -plugin "$GO_FIXTURE_PLUGIN" -mode ping >v13.out 2>v13.err || { echo "1,3 failed"; return 1; }
  has v13.out '.type=="connected" and .negotiated_version==1' || { echo "1,3 did not negotiate 1"; return 1; }
  GOPLUGIN_VERSIONS=5,6 gohost -versions 1,2 -plugin "$GO_FIXTURE_PLUGIN" -mode ping >none.out 2>none.err && { echo "no common version but success"; return 1; }
  has none.out '.type=="error" and .step=="connect" and (.error|contains("incompatible API version with plugin. Plugin version: 5"))' || { echo "no 'incompatible API version' error"; return 1; }
}

t_gohost_cookie_mismatch() {
  gohost -cookie OTHER_COOKIE=x -plugin "$GO_FIXTURE_PLUGIN" -mode ping >run.out 2>run.err && { echo "wrong cookie but success"; return 1; }
  has run.out '.type=="error" and .step=="connect"' || { echo "no connect error"; return 1; }
  grep -q "This binary is a plugin" run.err || { echo "plugin's cookie message not logged"; return 1; }
}

t_gohost_panic() {
  gohost -plugin-stderr raw.log -plugin "$GO_FIXTURE_PLUGIN" -mode panic boom >run.out 2>run.err || { echo "gohost exit $?"; return 1; }
  has run.out '.type=="panic" and .ok==true and .exited==true' || { echo "no panic result"; return 1; }
  has run.err '."@level"=="error" and ."@message"=="panic: boom"' || { echo "panic line not logged at error"; return 1; }
  grep -qx "panic: boom" raw.log || { echo "-plugin-stderr has no raw 'panic: boom' line"; return 1; }
}

t_gohost_shutdown() {
  gohost -plugin "$GO_FIXTURE_PLUGIN" -mode shutdown >run.out 2>run.err || { echo "gohost exit $?"; return 1; }
  has run.out '.type=="killed" and .graceful==true and .exit_code==0 and .group_killed==false' || { echo "not a graceful exit 0"; return 1; }
}

# A plugin command whose shell outlives the plugin: go-plugin SIGKILLs only `sh`, the `sleep`
# keeps the pipes open, and gohost's watchdog must kill the process group.
t_gohost_kill_watchdog() {
  gohost -plugin "$GO_FIXTURE_PLUGIN; sleep 30" -mode shutdown >run.out 2>run.err || { echo "gohost exit $?"; return 1; }
  has run.out '.type=="killed" and .graceful==false and .group_killed==true' || { echo "watchdog did not fire"; return 1; }
  grep -q "plugin failed to exit gracefully" run.err || { echo "no go-plugin warning"; return 1; }
}

t_gohost_reattach() {
  gohost -plugin "$GO_FIXTURE_PLUGIN" -mode reattach-print >print.out 2>print.err || { echo "reattach-print failed"; return 1; }
  has print.out '.type=="reattach" and .protocol=="grpc" and .protocol_version==1 and .network=="unix" and .pid>0' || { echo "bad reattach line"; return 1; }
  # Start goplugin by hand and let gohost reattach to it.
  (exec env BASIC_PLUGIN=hello PLUGIN_PROTOCOL_VERSIONS=1 "$GO_FIXTURE_PLUGIN" >plugin.out 2>plugin.err) &
  local pid=$! i line
  for i in $(seq 100); do line="$(head -1 plugin.out)"; [[ -n "$line" ]] && break; sleep 0.05; done
  IFS='|' read -r _ ver net addr proto _ <<<"$line"
  local rj
  rj="$(jq -cn --arg p "$proto" --argjson v "$ver" --arg n "$net" --arg a "$addr" --argjson pid "$pid" \
    '{protocol:$p,protocol_version:$v,network:$n,addr:$a,pid:$pid,test:false}')"
  gohost -reattach "$rj" -mode grpctest -steps ping,double,printkv,bidirectional,stream >run.out 2>run.err || { echo "reattach run failed"; return 1; }
  expect_ok run.out || return 1
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && { echo "plugin still running after Kill"; return 1; }
  return 0
}

# python-plugin host drives Go plugins.
pyhost() { timeout "$T" "$PY_VENV_PYTHON" "$PY_HOST_KV" --stubs "$PY_KV_STUBS" "$@"; }
t_pyhost_kv_example_mtls() {
  pyhost --mtls --key k --value pyval -- "$GO_EXAMPLE_KV_PLUGIN" >run.out 2>run.err || { echo "pyhost exit $?"; return 1; }
  has run.out '.type=="connected" and .tls==true' || { echo "not TLS"; return 1; }
  has run.out '.type=="kv-get" and .value=="pyval\n\nWritten from plugin-go-grpc"' || { echo "wrong value"; return 1; }
}
t_pyhost_kv_example_plain() {
  pyhost --no-mtls --key k --value pyval -- "$GO_EXAMPLE_KV_PLUGIN" >run.out 2>run.err || { echo "pyhost exit $?"; return 1; }
  has run.out '.type=="connected" and .tls==false' || { echo "TLS on"; return 1; }
  has run.out '.type=="kv-get" and .value=="pyval\n\nWritten from plugin-go-grpc"' || { echo "wrong value"; return 1; }
}
t_pyhost_kv_goplugin_v2() {
  GOPLUGIN_VERSIONS=1,2 pyhost --mtls --versions 1,2 --key k --value 'ünïcode' -- "$GO_FIXTURE_PLUGIN" >run.out 2>run.err || { echo "pyhost exit $?"; return 1; }
  has run.out '.type=="connected" and .negotiated_version==2 and .tls==true' || { echo "did not negotiate 2 over TLS"; return 1; }
  has run.out '.type=="kv-get" and .value=="ünïcode"' || { echo "wrong value"; return 1; }
}

# python-plugin's examples/greeter plugin, started by hand: print the handshake line.
greeter_line() { # greeter_line OUTFILE [extra env...]
  local out="$1"
  shift
  (exec env GREETER_PLUGIN=hello-from-pyplugin PLUGIN_PROTOCOL_VERSIONS=1 "$@" \
    "$PY_VENV_PYTHON" "$PY_GREETER_PLUGIN" >"$out" 2>"${out%.out}.err") &
  local pid=$! i
  for i in $(seq 200); do [[ -s "$out" ]] && break; sleep 0.05; done
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && { echo "greeter ignored SIGTERM"; return 1; }
  return 0
}
t_greeter_handshake_plain() {
  greeter_line plain.out || return 1
  grep -qE '^1\|1\|unix\|[^|]+\|grpc\|$' plain.out || { echo "handshake line: $(head -1 plain.out)"; return 1; }
}
t_greeter_handshake_mtls() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -sha512 -nodes -days 1 \
    -keyout host.key -out host.pem -subj "/O=HashiCorp/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement,keyCertSign" \
    -addext "extendedKeyUsage=clientAuth,serverAuth" >openssl.log 2>&1 || { echo "openssl failed"; return 1; }
  greeter_line mtls.out PLUGIN_CLIENT_CERT="$(cat host.pem)" || return 1
  local cert
  cert="$(head -1 mtls.out | cut -d'|' -f6)"
  ((${#cert} > 50)) || { echo "no cert in handshake line: $(head -1 mtls.out)"; return 1; }
  [[ "$cert" != *"="* ]] || { echo "cert is padded base64"; return 1; }
  local padded="$cert"
  while ((${#padded} % 4)); do padded+="="; done
  printf '%s' "$padded" | base64 -d >plugin.der 2>/dev/null || { echo "cert not base64"; return 1; }
  openssl x509 -inform DER -in plugin.der -noout -text >cert.txt 2>&1 || { echo "cert not X.509 DER"; return 1; }
  grep -q "P-521" cert.txt && grep -q "DNS:localhost" cert.txt && grep -q "CA:TRUE" cert.txt || { echo "cert is not go-plugin style"; return 1; }
}

# gohost (go-plugin host) drives the python-plugin greeter: handshake + health Ping.
gohost_greeter() {
  gohost "$@" -cookie GREETER_PLUGIN=hello-from-pyplugin -plugin "'$PY_VENV_PYTHON' '$PY_GREETER_PLUGIN'" -mode ping >run.out 2>run.err || { echo "gohost exit $?"; return 1; }
  expect_ok run.out || return 1
}
t_gohost_ping_greeter_plain() { gohost_greeter; }
t_gohost_ping_greeter_automtls() { gohost_greeter -automtls; }

# RPCPlugin Go v0.3.1 (only when peers.sh could build it).
t_rpcplugin_count() {
  [[ -n "${RPCPLUGIN_COUNT_CLIENT:-}" ]] || { echo "go.rpcplugin.org is refused by the Go module proxy here (PEERS_RPCPLUGIN=1 to retry)"; return 99; }
  timeout -s INT 7 "$RPCPLUGIN_COUNT_CLIENT" "$RPCPLUGIN_COUNT_SERVER" >run.out 2>run.err
  grep -q "count is 2" run.err || { echo "no 'count is 2'"; return 1; }
}

check example-kv-host-plugin t_example_kv
check example-bidirectional t_example_bidirectional
check gohost-kv-plain t_gohost_kv_plain
check gohost-kv-automtls t_gohost_kv_automtls
check gohost-grpctest-plain t_gohost_grpctest_plain
check gohost-grpctest-automtls t_gohost_grpctest_automtls
check gohost-grpctest-mux t_gohost_grpctest_mux
check gohost-grpctest-automtls-mux t_gohost_grpctest_automtls_mux
check gohost-negotiation t_gohost_negotiation
check gohost-cookie-mismatch t_gohost_cookie_mismatch
check gohost-panic t_gohost_panic
check gohost-reattach t_gohost_reattach
check gohost-shutdown t_gohost_shutdown
check gohost-kill-watchdog t_gohost_kill_watchdog
check pyhost-kv-example-mtls t_pyhost_kv_example_mtls
check pyhost-kv-example-plain t_pyhost_kv_example_plain
check pyhost-kv-goplugin-v2 t_pyhost_kv_goplugin_v2
check greeter-handshake-plain t_greeter_handshake_plain
check greeter-handshake-mtls t_greeter_handshake_mtls
check gohost-ping-greeter-plain t_gohost_ping_greeter_plain
check gohost-ping-greeter-automtls t_gohost_ping_greeter_automtls
check rpcplugin-count t_rpcplugin_count

sleep 0.2
leftovers >"$WORK/.left"
left="$(tr '\n' ' ' <"$WORK/.left")"
if [[ -n "$left" ]]; then
  FAILN=$((FAILN + 1))
  echo "FAIL leftover processes: $left"
  for p in $left; do echo "  $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done
fi
[[ -n "$SOCKS_LEFT" ]] && echo "note: unix socket files left behind by: $SOCKS_LEFT"
echo "smoke: $PASS passed, $FAILN failed, $SKIP skipped"
((FAILN == 0))

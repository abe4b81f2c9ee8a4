#!/usr/bin/env bash
# Smoke test of the single executable (docs/packaging.md). Builds nothing.
#
#   test/smoke/sea-smoke.sh BINARY DATABASE_URL
#
# The database must hold the schema (test/smoke/with-database.mjs makes one with the demo farm).
# The binary is copied into an empty temp dir and run from / with an empty environment whose
# PATH has no node, so nothing from this source tree, node_modules or a Node install can help:
#   1. `--version`, and `--help` of the CLI and of every command;
#   2. `serve` on a free loopback port answers /readyz 200 (bounded wait), then exits 0 on SIGTERM.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BINARY DATABASE_URL" >&2
  exit 2
fi
binary=$1
database_url=$2
COMMANDS=(serve seed recompute inspect flip-show notify-test)
READY_TIMEOUT_S=${SMOKE_READY_TIMEOUT_S:-30}
STOP_TIMEOUT_S=${SMOKE_STOP_TIMEOUT_S:-20}

[[ -x $binary ]] || { echo "sea-smoke: $binary is not an executable file" >&2; exit 2; }
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

work=$(mktemp -d /tmp/cueacct-smoke.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp "$binary" "$work/cueacct"
bin="$work/cueacct"

# A PATH with the usual tools but no node (and no PostgreSQL program).
mkdir "$work/home"
make_bare_path "$work/path"

# Runs the binary from / with nothing from the caller's environment but what is given.
isolated() {
  (cd / && env -i PATH="$work/path" HOME="$work/home" "$@")
}

failures=0
check() {
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

help_ok() {
  local out
  out=$(isolated "$bin" "$@" --help 2>&1) || { echo "$out" >&2; return 1; }
  grep -q '^USAGE' <<<"$out" || { echo "$out" >&2; return 1; }
}

version_ok() { isolated "$bin" --version | grep -q '^cueacct/'; }

check "--version" version_ok
check "--help" help_ok
for command in "${COMMANDS[@]}"; do check "$command --help" help_ok "$command"; done

# --- serve --------------------------------------------------------------------------------------
port=$(free_port)

log="$work/serve.log"
(cd / && exec env -i PATH="$work/path" HOME="$work/home" \
  "$bin" serve --database-url "$database_url" --listen "127.0.0.1:$port") >"$log" 2>&1 &
server_pid=$!

ready=
deadline=$((SECONDS + READY_TIMEOUT_S))
while ((SECONDS < deadline)); do
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  if [[ $(http_status "$port" /readyz 2>/dev/null) == 200 ]]; then ready=1; break; fi
  sleep 0.2
done
if [[ -n $ready ]]; then
  echo "ok   serve answers /readyz 200 on 127.0.0.1:$port"
else
  echo "FAIL serve did not answer /readyz 200 within ${READY_TIMEOUT_S}s; its output:"
  sed 's/^/     /' "$log" | tail -40
  failures=$((failures + 1))
fi

if kill -0 "$server_pid" 2>/dev/null; then
  stop_child "$server_pid" "$STOP_TIMEOUT_S"
  code=$stopped_code
  server_pid_done=$server_pid
  server_pid=
  if [[ -z $code ]]; then
    kill -KILL "$server_pid_done" 2>/dev/null || true
    echo "FAIL serve did not exit within ${STOP_TIMEOUT_S}s of SIGTERM"
    failures=$((failures + 1))
  elif [[ $code -ne 0 ]]; then
    echo "FAIL serve exited $code after SIGTERM; its output:"
    sed 's/^/     /' "$log" | tail -20
    failures=$((failures + 1))
  else
    echo "ok   serve exits 0 on SIGTERM"
  fi
else
  set +e
  wait "$server_pid"
  code=$?
  set -e
  server_pid=
  echo "FAIL serve exited before SIGTERM (code $code)"
  [[ -z $ready ]] || sed 's/^/     /' "$log" | tail -20
  failures=$((failures + 1))
fi

if ((failures > 0)); then
  echo "sea-smoke: $failures check(s) failed" >&2
  exit 1
fi
echo "sea-smoke: all checks passed ($(du -m "$bin" | cut -f1) MiB executable)"

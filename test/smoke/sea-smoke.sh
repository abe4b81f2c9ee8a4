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

work=$(mktemp -d /tmp/cueacct-smoke.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp "$binary" "$work/cueacct"
bin="$work/cueacct"

# A PATH with the usual tools but no node: links to /usr/bin and /bin minus node and its tools.
mkdir "$work/path" "$work/home"
for dir in /usr/local/bin /usr/bin /bin; do
  [[ -d $dir ]] || continue
  for tool in "$dir"/*; do
    name=${tool##*/}
    case $name in node | nodejs | npm | npx | corepack) continue ;; esac
    [[ -e $work/path/$name ]] || ln -s "$tool" "$work/path/$name"
  done
done
if PATH="$work/path" command -v node >/dev/null; then
  echo "sea-smoke: could not hide node from PATH" >&2
  exit 1
fi

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
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 40000))
  if port_free "$candidate"; then port=$candidate; break; fi
done
[[ -n $port ]] || { echo "sea-smoke: no free port" >&2; exit 1; }

# HTTP status of GET /readyz, with bash's /dev/tcp (no curl needed).
readyz_status() {
  local line
  exec 4<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&4
  IFS= read -r -t 5 line <&4 || true
  exec 4<&- 4>&-
  line=${line%$'\r'}
  echo "${line#* }" | cut -d' ' -f1
}

log="$work/serve.log"
(cd / && exec env -i PATH="$work/path" HOME="$work/home" \
  "$bin" serve --database-url "$database_url" --listen "127.0.0.1:$port") >"$log" 2>&1 &
server_pid=$!

ready=
deadline=$((SECONDS + READY_TIMEOUT_S))
while ((SECONDS < deadline)); do
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  if [[ $(readyz_status 2>/dev/null) == 200 ]]; then ready=1; break; fi
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
  kill -TERM "$server_pid"
  code=
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      set +e
      wait "$server_pid"
      code=$?
      set -e
      break
    fi
    sleep 0.1
  done
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

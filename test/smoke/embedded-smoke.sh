#!/usr/bin/env bash
# Smoke test of the single executable standing alone (docs/packaging.md): on a host with no
# PostgreSQL and no node, `serve --embedded --simulate` from nothing but the copied binary
# unpacks the PostgreSQL it carries, becomes ready, serves the demo farm and stops cleanly on
# SIGTERM with no process left behind; a second start reuses the verified cache.
#
#   test/smoke/embedded-smoke.sh BINARY          (builds nothing; run after `npm run package`)
#
# How "no PostgreSQL on the host" is made honest: the executable's own search is left exactly as
# shipped (no opt-out switch exists or is set). Instead this test HIDES the system's server
# directories that search looks in (/usr/lib/postgresql, /usr/pgsql-*, /usr/local/pgsql) behind
# empty read-only tmpfs mounts in a private mount namespace (`unshare --mount`, needs root), builds
# a PATH with no PostgreSQL program and no node, and clears the environment (no CUEACCT_PG_BIN).
# So the binary sees what a fresh host shows it. As a positive check the log must name the
# carried binaries in this test's cache as the ones that ran. Without root the hiding is
# impossible and the test fails saying so (it cannot be honest then) — unless no system server
# is installed, when there is nothing to hide.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BINARY" >&2
  exit 2
fi
binary=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
READY_TIMEOUT_S=${SMOKE_READY_TIMEOUT_S:-180}
STOP_TIMEOUT_S=${SMOKE_STOP_TIMEOUT_S:-30}

[[ -x $binary ]] || { echo "embedded-smoke: $binary is not an executable file" >&2; exit 2; }

# --- hide the system's PostgreSQL ---------------------------------------------------------------
system_dirs=()
for dir in /usr/lib/postgresql /usr/pgsql-* /usr/local/pgsql; do
  [[ -d $dir ]] && system_dirs+=("$dir")
done
if ((${#system_dirs[@]} > 0)) && [[ -z ${EMBEDDED_SMOKE_NAMESPACE:-} ]]; then
  if ! unshare --mount --propagation private true 2>/dev/null; then
    echo "embedded-smoke: cannot hide the system PostgreSQL (${system_dirs[*]}) in a private mount namespace" \
      "(unshare --mount needs root): refusing to run a test the installed server could pass" >&2
    exit 1
  fi
  exec unshare --mount --propagation private env EMBEDDED_SMOKE_NAMESPACE=1 bash "$0" "$@"
fi
for dir in "${system_dirs[@]}"; do
  mount -t tmpfs -o ro,mode=755,size=16k cueacct-smoke-hidden "$dir"
  [[ -z $(ls -A "$dir") ]] || { echo "embedded-smoke: $dir is still visible" >&2; exit 1; }
done

# --- an empty directory with the binary, a bare PATH, a fresh home ------------------------------
work=$(mktemp -d /tmp/cueacct-embedded-smoke.XXXXXX)
# As root the server runs as an unprivileged user, which must reach the cache and state dirs
# below (like a 0755 home directory); mktemp made this 0700.
chmod 755 "$work"
server_pid=

# Pids of processes running a program from this test's dir (the carried postgres in our cache)
# or naming our data dir on their command line (a postmaster's -D): ours, if any are left.
our_processes() {
  local proc exe
  for proc in /proc/[0-9]*; do
    exe=$(readlink "$proc/exe" 2>/dev/null) || continue
    if [[ $exe == "$work"/* ]] || tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF "$work/state"; then
      echo "${proc#/proc/}"
    fi
  done
}

cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  local pid
  for pid in $(our_processes); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/empty" "$work/home"
cp "$binary" "$work/empty/cueacct"
bin="$work/empty/cueacct"
make_bare_path "$work/path"

failures=0
pass() { echo "ok   $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# One start: serve --embedded --simulate becomes ready, serves the demo farm, stops on SIGTERM.
# $1 names the run; $2 is "first" (must unpack) or "again" (must reuse the cache).
run_once() {
  local run=$1 expect=$2 port log ready= code= deadline body
  port=$(free_port)
  log="$work/serve-$run.log"
  (cd / && exec env -i PATH="$work/path" HOME="$work/home" XDG_CACHE_HOME="$work/cache" \
    XDG_STATE_HOME="$work/state" "$bin" serve --embedded --simulate --listen "127.0.0.1:$port") >"$log" 2>&1 &
  server_pid=$!

  deadline=$((SECONDS + READY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    kill -0 "$server_pid" 2>/dev/null || break
    if [[ $(http_status "$port" /readyz 2>/dev/null) == 200 ]]; then ready=1; break; fi
    sleep 0.2
  done
  if [[ -z $ready ]]; then
    fail "$run: serve --embedded --simulate did not answer /readyz 200 within ${READY_TIMEOUT_S}s; its output:"
    sed 's/^/     /' "$log" | tail -40
    return
  fi
  pass "$run: serve --embedded --simulate answers /readyz 200"

  body=$(http_get "$port" '/v1/state?vertex=job' 2>/dev/null || true)
  if grep -q '^HTTP/1.1 200' <<<"$body" && grep -qF '"feature-sq010-sh0040-lighting"' <<<"$body" &&
    grep -qF '"episodic-ep101-sim"' <<<"$body"; then
    pass "$run: /v1/state shows the demo farm's jobs"
  else
    fail "$run: /v1/state does not show the demo farm: $(head -c 400 <<<"$body")"
  fi

  if grep -qF "\"binDir\":\"$work/cache/cueacct/pg-" "$log"; then
    pass "$run: the PostgreSQL that runs is the one carried by the executable ($work/cache/cueacct/pg-*)"
  else
    fail "$run: the log does not name the carried binaries in $work/cache as the ones that ran:"
    grep -F 'embedded PostgreSQL started' "$log" | sed 's/^/     /' | head -3
  fi
  local unpacked=
  grep -qF 'unpacked the PostgreSQL binaries carried by the executable' "$log" && unpacked=1
  if [[ $expect == first && -n $unpacked ]]; then
    pass "$run: unpacked the carried binaries into the cache"
  elif [[ $expect == again && -z $unpacked ]]; then
    pass "$run: reused the verified cache (nothing unpacked)"
  else
    if [[ $expect == first ]]; then fail "$run: the carried binaries were not unpacked"; else fail "$run: the cache was unpacked again instead of reused"; fi
  fi

  stop_child "$server_pid" "$STOP_TIMEOUT_S"
  code=$stopped_code
  if [[ -z $code ]]; then
    fail "$run: serve did not exit within ${STOP_TIMEOUT_S}s of SIGTERM"
  elif [[ $code -ne 0 ]]; then
    fail "$run: serve exited $code after SIGTERM; its output:"
    sed 's/^/     /' "$log" | tail -20
  else
    pass "$run: serve exits 0 on SIGTERM"
  fi
  server_pid=

  local left
  left=$(our_processes)
  if [[ -z $left ]]; then
    pass "$run: no postgres (or other) process of this test is left"
  else
    fail "$run: processes left behind: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
  fi
}

run_once first first
run_once second again

if ((failures > 0)); then
  echo "embedded-smoke: $failures check(s) failed" >&2
  exit 1
fi
echo "embedded-smoke: all checks passed ($(du -m "$bin" | cut -f1) MiB executable, cache $(du -sm "$work/cache" | cut -f1) MiB)"

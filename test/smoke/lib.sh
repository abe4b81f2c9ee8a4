# Helpers shared by the smoke tests (sourced; bash). They use only bash and coreutils.

# Fills the directory $1 with links to the tools of /usr/local/bin, /usr/bin and /bin except node
# and its tools, and PostgreSQL's client and server programs: a PATH from which neither node nor
# any PostgreSQL binary can be found. Fails if one still can.
make_bare_path() {
  local into=$1 dir tool name
  mkdir -p "$into"
  for dir in /usr/local/bin /usr/bin /bin; do
    [[ -d $dir ]] || continue
    for tool in "$dir"/*; do
      name=${tool##*/}
      case $name in
        node | nodejs | npm | npx | corepack) continue ;;
        postgres | postmaster | initdb | pg_* | psql | pgbench | createdb | dropdb | createuser | dropuser) continue ;;
      esac
      [[ -e $into/$name ]] || ln -s "$tool" "$into/$name"
    done
  done
  for name in node initdb postgres pg_ctl; do
    if PATH="$into" command -v "$name" >/dev/null; then
      echo "smoke: could not hide $name from PATH" >&2
      return 1
    fi
  done
}

# Prints a free loopback TCP port (bash's /dev/tcp: a refused connection means free).
free_port() {
  local candidate
  for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "smoke: no free port" >&2
  return 1
}

# GET http://127.0.0.1:$1$2 with bash's /dev/tcp (no curl needed): prints the whole response
# (status line, headers, body). Bounded by a 10 s timeout.
http_get() {
  local port=$1 path=$2
  exec 4<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&4
  timeout 10 cat <&4
  exec 4<&- 4>&-
}

# HTTP status code of GET http://127.0.0.1:$1$2.
http_status() {
  local line
  line=$(http_get "$1" "$2" 2>/dev/null | head -1) || return 1
  line=${line%$'\r'}
  echo "${line#* }" | cut -d' ' -f1
}

# SIGTERM a child of this shell and wait up to $2 seconds for it to exit. Sets `stopped_code` to
# its exit code, or to the empty string when it is still running at the deadline. (Not a
# command substitution: `wait` only works on children of the calling shell.)
stop_child() {
  local pid=$1 deadline=$((SECONDS + $2))
  stopped_code=
  kill -TERM "$pid"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      set +e
      wait "$pid"
      stopped_code=$?
      set -e
      return 0
    fi
    sleep 0.1
  done
}

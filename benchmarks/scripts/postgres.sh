#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the control-plane benchmark's "central SQL database"
# baseline: installs Debian's postgresql if it is missing (apt-get, needs root), initialises a
# cluster in a temporary directory, listens on 127.0.0.1 on a free port, and prints its URL.
#   bash benchmarks/scripts/postgres.sh            # prints postgres://postgres@127.0.0.1:PORT/postgres
#   bash benchmarks/scripts/postgres-stop.sh       # stops it and removes the directory
# State (data dir, port) goes to ${CAUSEWAY_PG_STATE:-/tmp/causeway-bench-postgres.state}.
set -euo pipefail
STATE="${CAUSEWAY_PG_STATE:-/tmp/causeway-bench-postgres.state}"

find_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  return 1
}

if ! BIN="$(find_bindir)"; then
  if [ -z "${CAUSEWAY_PG_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "postgresql not found: installing Debian's postgresql (apt-get install -y postgresql)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
    BIN="$(find_bindir)"
  else
    echo "postgresql is not installed; install it with: sudo apt-get install -y postgresql (or run benchmarks/scripts/postgres.sh as root)" >&2
    exit 3
  fi
fi

if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
  SRUN=()
  if [ "$(id -u)" = 0 ] && [ -d "${PGDIR:-/nonexistent}/data" ]; then SRUN=(runuser -u "$(stat -c %U "$PGDIR/data")" --); fi
  if [ -n "${PGDIR:-}" ] && "${SRUN[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:$PGPORT/postgres"
    exit 0
  fi
fi

PGDIR="$(mktemp -d /tmp/causeway-bench-pg.XXXXXX)"
PGPORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
RUN=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: run it as the postgres user (created by Debian's package) or nobody
  PGUSER_OS="$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)"
  chown "$PGUSER_OS" "$PGDIR"
  RUN=(runuser -u "$PGUSER_OS" --)
fi
"${RUN[@]}" "$BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1
"${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB" start >&2
printf 'PGDIR=%q\nPGPORT=%q\nPGBIN=%q\n' "$PGDIR" "$PGPORT" "$BIN" > "$STATE"
echo "postgres://postgres@127.0.0.1:$PGPORT/postgres"

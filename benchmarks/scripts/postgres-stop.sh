#!/usr/bin/env bash
# Stops the server started by postgres.sh and removes its directory.
set -euo pipefail
STATE="${CAUSEWAY_PG_STATE:-/tmp/causeway-bench-postgres.state}"
[ -f "$STATE" ] || { echo "no PostgreSQL started by postgres.sh ($STATE missing)" >&2; exit 0; }
# shellcheck disable=SC1090
. "$STATE"
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u "$(stat -c %U "$PGDIR/data")" --); fi
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2 || true
rm -rf "$PGDIR" "$STATE"
echo "stopped" >&2

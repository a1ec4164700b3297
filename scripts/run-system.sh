#!/usr/bin/env bash
# Runs the whole system on this machine: libvirtd, a Temporal dev server (UI on :8233), PostgreSQL
# (DATABASE_URL, or an embedded one under .data/postgres), the control-plane worker, one host
# worker for this machine and the REST API on :8080, supervised by scripts/run-system.ts (a child
# that dies is restarted; Ctrl-C or any signal to this script stops everything it started).
# Ports and directories: QX_DATA_DIR, QX_TEMPORAL_PORT, QX_TEMPORAL_UI_PORT, QX_POSTGRES_PORT,
# QX_API_PORT (see scripts/run-system.ts).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# QX_SKIP_SETUP=1: setup already ran (the test command runs it once before the tests start this script).
[ "${QX_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
if command -v libvirtd >/dev/null && [ "$(id -u)" = 0 ]; then bash scripts/services/libvirtd.sh start; fi
# exec: the supervisor takes this process's place, so a signal sent to the script reaches it (bash
# would hold a signal until its foreground child ended, leaving that child's children running).
exec node --import tsx scripts/run-system.ts

#!/usr/bin/env bash
# Runs the whole system on this machine: libvirtd, a Temporal dev server (UI on :8233), PostgreSQL
# (DATABASE_URL, or an embedded one under .data/postgres), the control-plane worker, one host
# worker for this machine and the REST API on :8080. Ctrl-C stops it all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
if command -v libvirtd >/dev/null && [ "$(id -u)" = 0 ]; then bash scripts/services/libvirtd.sh start; fi
bash scripts/services/temporal.sh start
trap 'bash scripts/services/temporal.sh stop' EXIT
npx tsx scripts/run-system.ts

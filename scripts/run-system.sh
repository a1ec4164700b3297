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
stop_services='bash scripts/services/temporal.sh stop'
# Virtual networks: OVN central on its default ports (6641/6642) and this machine's chassis.
if command -v ovn-northd >/dev/null && [ "$(id -u)" = 0 ]; then
  bash scripts/services/ovn.sh start
  stop_services="bash scripts/services/ovn.sh stop; $stop_services"
  export QX_OVN_STARTED=1
fi
trap "$stop_services" EXIT
npx tsx scripts/run-system.ts

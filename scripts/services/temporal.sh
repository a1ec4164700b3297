#!/usr/bin/env bash
# Starts/stops a Temporal dev server (full server on SQLite, Web UI built in) from the project venv;
# `run` runs it in the foreground instead (for a supervisor).
#   QX_TEMPORAL_PORT (7233), QX_TEMPORAL_UI_PORT (8233), QX_TEMPORAL_DIR (<repo>/.data/temporal)
# The custom search attributes the workflows set are registered at start.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
port=${QX_TEMPORAL_PORT:-7233}
ui_port=${QX_TEMPORAL_UI_PORT:-8233}
dir=${QX_TEMPORAL_DIR:-$root/.data/temporal}
bin="$root/.tools/venv/bin/temporal"
pidfile="$dir/temporal-$port.pid"

healthy() { "$bin" operator cluster health --address "127.0.0.1:$port" 2>/dev/null | grep -q SERVING; }

server_args() {
  args=(server start-dev --ip 127.0.0.1 --port "$port" --ui-port "$ui_port"
        --db-filename "$dir/temporal-$port.db" --namespace default --log-level warn)
  for sa in VmId HostId OperationType OperationId; do args+=(--search-attribute "$sa=Keyword"); done
  [ "${QX_TEMPORAL_HEADLESS:-0}" = 1 ] && args+=(--headless)
  return 0
}

# In the foreground, for a supervisor (scripts/run-system.ts) that restarts it when it dies.
run() {
  mkdir -p "$dir"
  server_args
  exec "$bin" "${args[@]}"
}

start() {
  mkdir -p "$dir"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && healthy; then return 0; fi
  server_args
  nohup "$bin" "${args[@]}" >"$dir/temporal-$port.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    healthy && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.1
  done
  echo "temporal dev server did not become healthy; log:" >&2
  tail -20 "$dir/temporal-$port.log" >&2
  return 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-start}" in
  start) start ;;
  run) run ;;
  stop) stop ;;
  *) echo "usage: $0 start|run|stop" >&2; exit 2 ;;
esac

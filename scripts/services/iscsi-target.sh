#!/usr/bin/env bash
# Starts/stops a tgtd iSCSI target on 127.0.0.1:3260 for the iscsi storage backend and its tests,
# without systemd or kernel modules (see shared recipe iscsi-nfs.md). Target
# iqn.2026-11.io.quantix:test exports three sparse LUN files (1: 64 MiB, 2 and 3: 128 MiB, or the
# sizes in $QX_ISCSI_LUN_SIZES, e.g. "1G 2G 2G" for volumes made through the API in GiB) to
# 127.0.0.1 behind a CHAP account; the account's user and password are written to
# $QX_ISCSI_DIR/chap-user and chap-password (0600) for the tests to read.
# State: $QX_ISCSI_DIR (default <repo>/.data/iscsi). tgtd keeps its configuration in memory only,
# so `stop` removes the state and the next `start` makes fresh, empty LUNs.
set -euo pipefail
cmd=${1:-start}
repo=$(cd "$(dirname "$0")/../.." && pwd)
D=${QX_ISCSI_DIR:-$repo/.data/iscsi}
IQN=iqn.2026-11.io.quantix:test
PORTAL=127.0.0.1:3260
TID=1
CHAP_USER=qxuser
read -r -a LUN_SIZES <<<"${QX_ISCSI_LUN_SIZES:-64M 128M 128M}" # LUN n is LUN_SIZES[n-1]

tgtd_pid() { cat "$D/tgtd.pid" 2>/dev/null || true; }
running() { local p; p=$(tgtd_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
listening() { ss -Hltn "sport = :${PORTAL##*:}" | grep -q .; }
tgt() { tgtadm --lld iscsi "$@" >>"$D/tgtd.log" 2>&1; }

configure() {
  tgt --op new --mode target --tid $TID --targetname $IQN
  local lun=1
  for size in "${LUN_SIZES[@]}"; do
    truncate -s "$size" "$D/lun$lun.img"
    tgt --op new --mode logicalunit --tid $TID --lun $lun --backing-store "$D/lun$lun.img"
    lun=$((lun + 1))
  done
  # An ACL on the initiator's address (not the listen address), then CHAP for incoming logins.
  tgt --op bind --mode target --tid $TID --initiator-address 127.0.0.1
  local password
  password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && printf %s "$CHAP_USER" >"$D/chap-user" && printf %s "$password" >"$D/chap-password")
  tgt --op new --mode account --user $CHAP_USER --password "$password"
  tgt --op bind --mode account --tid $TID --user $CHAP_USER
}

start() {
  if running && tgtadm --lld iscsi --op show --mode target 2>/dev/null | grep -q "$IQN"; then return 0; fi
  stop
  mkdir -p "$D"
  # -f keeps tgtd in the foreground (it writes no pid file then); setsid detaches it from the caller.
  setsid tgtd -f --iscsi portal=$PORTAL </dev/null >>"$D/tgtd.log" 2>&1 &
  echo $! >"$D/tgtd.pid"
  for _ in $(seq 1 100); do
    listening && break
    running || { echo "tgtd exited; see $D/tgtd.log" >&2; return 1; }
    sleep 0.1
  done
  listening || { echo "tgtd is not listening on $PORTAL" >&2; return 1; }
  configure
}

# tgtd refuses `delete --mode system` while targets exist: take them offline and remove them first.
stop() {
  local p
  p=$(tgtd_pid)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    tgtadm --op update --mode sys --name State -v offline >/dev/null 2>&1 || true
    tgt-admin --offline ALL >/dev/null 2>&1 || true
    tgt-admin --update ALL -c /dev/null -f >/dev/null 2>&1 || true
    tgtadm --op delete --mode system >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  fi
  rm -rf "$D"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts/stops a single-node Ceph (mon.a, mgr.x, osd.0) for the rbd storage backend and its tests,
# without systemd (see shared recipe ceph.md). The OSD is bluestore on a 4 GiB sparse file rather
# than memstore: it survives a daemon restart (a restarted memstore OSD comes back empty and the
# cluster hangs), so `start` can revive an existing cluster instead of re-bootstrapping it.
# State: $QX_CEPH_DIR (default <repo>/.data/ceph), kept by `stop`; pool `rbd` and the keyring of
# the client the backend uses ($QX_CEPH_DIR/client.qx.keyring) are made once, at bootstrap.
# Ports on 127.0.0.1: mon 3300 + 6789, osd/mgr 6800-6809.
set -euo pipefail
cmd=${1:-start}
repo=$(cd "$(dirname "$0")/../.." && pwd)
D=${QX_CEPH_DIR:-$repo/.data/ceph}
export CEPH_CONF=$D/ceph.conf
READY_TIMEOUT_S=120
DAEMONS=(osd.0 mgr.x mon.a) # stop order; start order is the reverse

pid_of() { cat "$D/run/$1.pid" 2>/dev/null || true; }
running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
q() { "$@" >>"$D/log/bootstrap.log" 2>&1; } # keeps the console quiet; the log has the detail

write_conf() {
  # $name/$id stay literal: Ceph expands them per daemon.
  cat >"$D/ceph.conf" <<EOF
[global]
fsid = $1
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
mon initial members = a
public network = 127.0.0.1/32
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon cluster log file = $D/log/ceph.cluster.log
mon data = $D/mon/\$id
mgr data = $D/mgr/\$id
osd data = $D/osd/\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 5
[osd]
osd objectstore = bluestore
bluestore block path = $D/osd/\$id/block.file
bluestore block size = 4294967296
bluestore block create = true
EOF
}

bootstrap() {
  rm -rf "$D"
  mkdir -p "$D"/{mon/a,mgr/x,osd/0,run,log}
  local fsid osd_uuid
  fsid=$(uuidgen)
  osd_uuid=$(uuidgen)
  write_conf "$fsid"
  q ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *'
  q ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
  q ceph-authtool "$D/keyring" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
  q ceph-authtool "$D/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
  chmod 600 "$D/keyring"
  q monmaptool --create --fsid "$fsid" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$D/monmap"
  # --mkfs imports every key and cap of the keyring above: no `ceph auth add` needed.
  q ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
  q ceph-mon -i a
  q ceph -s --connect-timeout 30
  q ceph-mgr -i x
  q ceph osd new "$osd_uuid" 0
  q ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid"
  q ceph-osd -i 0
  q ceph osd pool create rbd 8
  q rbd pool init rbd
  q ceph auth get-or-create client.qx mon 'profile rbd' osd 'profile rbd pool=rbd' mgr 'profile rbd pool=rbd' -o "$D/client.qx.keyring"
  chmod 600 "$D/client.qx.keyring"
  touch "$D/bootstrapped" # written last: a half-made cluster is bootstrapped again
}

start_daemons() {
  running mon.a || q ceph-mon -i a
  running mgr.x || q ceph-mgr -i x
  running osd.0 || q ceph-osd -i 0
}

# Ready when the OSD is up, the mgr available (ceph df needs it) and every PG is active+clean.
cluster_ready() {
  ceph --connect-timeout 5 pg stat --format json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
clean = sum(x["num"] for x in s["pg_summary"]["num_pg_by_state"] if x["name"] == "active+clean")
sys.exit(0 if s["pg_summary"]["num_pgs"] > 0 and clean == s["pg_summary"]["num_pgs"] else 1)' 2>/dev/null &&
    ceph --connect-timeout 5 mgr stat --format json 2>/dev/null | grep -q '"available": *true' &&
    ceph --connect-timeout 5 osd dump --format json 2>/dev/null | grep -q '"up": *1'
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until cluster_ready; do
    if [ $SECONDS -ge $deadline ]; then
      echo "ceph: not active+clean after ${READY_TIMEOUT_S}s; logs in $D/log" >&2
      ceph --connect-timeout 5 -s >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

start() {
  if [ ! -f "$D/bootstrapped" ]; then
    stop
    bootstrap
  else
    start_daemons
  fi
  wait_ready
}

stop() {
  local p
  for n in "${DAEMONS[@]}"; do
    p=$(pid_of "$n")
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    rm -f "$D/run/$n.pid"
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# OVN central (Northbound + Southbound ovsdb-servers, ovn-northd) and chassis (an Open vSwitch
# ovsdb-server + ovs-vswitchd on the userspace netdev datapath, and ovn-controller), without
# systemd, as in the shared recipe ovn.md. Every socket, pid file and port comes from the
# environment, so a test run starts its own stack beside the system's:
#   QX_OVN_DIR      state directory (databases, sockets, logs)   default <repo>/.data/ovn
#   QX_OVN_NB_PORT  Northbound TCP port on 127.0.0.1             default 6641
#   QX_OVN_SB_PORT  Southbound TCP port on 127.0.0.1             default 6642
#
#   ovn.sh start | stop                      central + the root chassis (run-system.sh); stop stops every chassis too
#   ovn.sh start-central | stop-central
#   ovn.sh start-chassis NAME [NETNS UNDERLAY_CIDR]   a chassis; with NETNS its vswitchd and ovn-controller
#                                            run in that network namespace, with a veth on the shared underlay
#                                            (a Linux bridge in the namespace QX_OVN_UNDERLAY_NETNS) whose
#                                            address UNDERLAY_CIDR sits on br-phy: its Geneve encap IP
#   ovn.sh stop-chassis NAME
#
# The chassis named "root" runs in the root namespace, where libvirt's taps are, and is the one libvirt
# plugs guests into: libvirtd runs `ovs-vsctl` against the default /run/openvswitch/db.sock, so that socket
# is served by the root chassis's ovsdb-server. One machine has one such socket (and one pair of netdev
# taps br-int/ovs-netdev in the root namespace): the root chassis is claimed under a lock and a second
# stack waits (QX_OVN_ROOT_WAIT_S, default 600 s) until the first is stopped.
# A chassis is left unconfigured: the host worker that owns it sets its system-id, remote, encap and
# br-int when it starts (activities/ovn/chassis.ts).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${QX_OVN_DIR:-$root/.data/ovn}
nb_port=${QX_OVN_NB_PORT:-6641}
sb_port=${QX_OVN_SB_PORT:-6642}
underlay_ns=${QX_OVN_UNDERLAY_NETNS:-}
root_claim=/run/openvswitch/qx-root-chassis
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # relative socket paths resolve against OVS_RUNDIR (recipe pitfall): absolute only

alive() { [ -n "${1:-}" ] && ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
pid_of() { [ -f "$1" ] && cat "$1" || true; }

# Stops a daemon by its pid file: TERM, up to 5 s, then KILL. Exited daemons linger as zombies
# until PID 1 reaps them, so liveness is read from ps, not kill -0 (recipe pitfall).
stop_pidfile() {
  local pid; pid=$(pid_of "$1")
  alive "$pid" || { rm -f "$1"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

start_central() {
  local c=$dir/central; mkdir -p "$c/db" "$c/run" "$c/log"
  rundir "$c"
  alive "$(pid_of "$c/run/ovnnb_db.pid")" && alive "$(pid_of "$c/run/ovnsb_db.pid")" && alive "$(pid_of "$c/run/ovn-northd.pid")" && return 0
  stop_central
  [ -f "$c/db/ovnnb_db.db" ] || ovsdb-tool create "$c/db/ovnnb_db.db" /usr/share/ovn/ovn-nb.ovsschema
  [ -f "$c/db/ovnsb_db.db" ] || ovsdb-tool create "$c/db/ovnsb_db.db" /usr/share/ovn/ovn-sb.ovsschema
  # A database kept from an older OVN is converted to the installed schema.
  for db in nb sb; do
    local file=$c/db/ovn${db}_db.db schema=/usr/share/ovn/ovn-$db.ovsschema
    [ "$(ovsdb-tool needs-conversion "$file" "$schema")" = yes ] && ovsdb-tool convert "$file" "$schema"
  done
  ovsdb-server "$c/db/ovnnb_db.db" --detach --no-chdir --pidfile="$c/run/ovnnb_db.pid" --unixctl="$c/run/ovnnb_db.ctl" \
    --log-file="$c/log/ovsdb-server-nb.log" --remote="punix:$c/run/ovnnb_db.sock" --remote="ptcp:$nb_port:127.0.0.1"
  ovsdb-server "$c/db/ovnsb_db.db" --detach --no-chdir --pidfile="$c/run/ovnsb_db.pid" --unixctl="$c/run/ovnsb_db.ctl" \
    --log-file="$c/log/ovsdb-server-sb.log" --remote="punix:$c/run/ovnsb_db.sock" --remote="ptcp:$sb_port:127.0.0.1"
  ovn-northd --detach --no-chdir --pidfile="$c/run/ovn-northd.pid" --unixctl="$c/run/ovn-northd.ctl" --log-file="$c/log/ovn-northd.log" \
    --ovnnb-db="unix:$c/run/ovnnb_db.sock" --ovnsb-db="unix:$c/run/ovnsb_db.sock"
}

stop_central() {
  local c=$dir/central
  for p in ovn-northd ovnsb_db ovnnb_db; do stop_pidfile "$c/run/$p.pid"; done
}

# Claims the machine's root chassis (the default OVS socket) for this stack, waiting for another owner.
claim_root() {
  mkdir -p /run/openvswitch
  local waited=0 limit=${QX_OVN_ROOT_WAIT_S:-600}
  while :; do
    if (
      flock -x 9
      owner=$(cat "$root_claim" 2>/dev/null || true)
      if [ -n "$owner" ] && [ "$owner" != "$dir" ] && alive "$(pid_of "$owner/chassis-root/run/ovsdb-server.pid")"; then exit 1; fi
      echo "$dir" >"$root_claim"
    ) 9>"$root_claim.lock"; then return 0; fi
    [ "$waited" -ge "$limit" ] && { echo "ovn.sh: the root chassis is held by $(cat "$root_claim") for ${limit}s" >&2; return 1; }
    [ "$waited" = 0 ] && echo "ovn.sh: waiting for the root chassis held by $(cat "$root_claim")" >&2
    sleep 2; waited=$((waited + 2))
  done
}

release_root() {
  (
    flock -x 9
    [ "$(cat "$root_claim" 2>/dev/null || true)" = "$dir" ] || exit 0
    rm -f "$root_claim" /run/openvswitch/db.sock
  ) 9>"$root_claim.lock"
}

# Daemons put their management sockets (br-int.mgmt, ...) in their rundir: never the system's.
rundir() { export OVS_RUNDIR=$1/run OVS_LOGDIR=$1/log OVS_DBDIR=$1/db OVN_RUNDIR=$1/run OVN_LOGDIR=$1/log OVN_DBDIR=$1/db; }

in_ns() { local ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

start_underlay() {
  [ -n "$underlay_ns" ] || { echo "ovn.sh: a chassis in a namespace needs QX_OVN_UNDERLAY_NETNS" >&2; return 1; }
  ip netns list | grep -qx "$underlay_ns\( .*\)\?" && return 0
  ip netns add "$underlay_ns"
  ip -n "$underlay_ns" link add ul type bridge
  ip -n "$underlay_ns" link set ul up
}

start_chassis() {
  local name=$1 ns=${2:-} underlay_cidr=${3:-} c=$dir/chassis-$1
  mkdir -p "$c/db" "$c/run" "$c/log"
  rundir "$c"
  alive "$(pid_of "$c/run/ovn-controller.pid")" && alive "$(pid_of "$c/run/ovs-vswitchd.pid")" && return 0
  stop_chassis "$name"
  local remotes=(--remote="punix:$c/run/db.sock")
  if [ "$name" = root ]; then
    claim_root
    remotes+=(--remote=punix:/run/openvswitch/db.sock)
  elif [ -n "$ns" ]; then
    start_underlay
    ip netns add "$ns"
    echo "$ns" >"$c/netns"
    # The chassis's uplink: one end in its namespace (ul0), the other on the underlay bridge.
    local peer="ul-${name:0:12}"
    ip link add ul0 netns "$ns" type veth peer name "$peer" netns "$underlay_ns"
    ip -n "$underlay_ns" link set "$peer" master ul up
    ip -n "$ns" link set ul0 up
    ip -n "$ns" link set lo up
  fi
  rm -f "$c/db/conf.db"
  ovsdb-tool create "$c/db/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$c/db/conf.db" --detach --no-chdir --pidfile="$c/run/ovsdb-server.pid" --unixctl="$c/run/ovsdb-server.ctl" \
    --log-file="$c/log/ovsdb-server.log" "${remotes[@]}" --remote=db:Open_vSwitch,Open_vSwitch,manager_options
  ovs-vsctl --db="unix:$c/run/db.sock" --no-wait init
  in_ns "$ns" ovs-vswitchd "unix:$c/run/db.sock" --detach --no-chdir --pidfile="$c/run/ovs-vswitchd.pid" --unixctl="$c/run/ovs-vswitchd.ctl" \
    --log-file="$c/log/ovs-vswitchd.log" 2>>"$c/log/ovs-vswitchd.stderr"
  if [ -n "$underlay_cidr" ]; then
    # Userspace (netdev) tunnels leave through an OVS bridge that holds the encap IP (OVS's
    # userspace-tunneling how-to): br-phy, with the uplink as its port.
    ovs-vsctl --db="unix:$c/run/db.sock" -- add-br br-phy -- set Bridge br-phy datapath_type=netdev -- add-port br-phy ul0
    ip -n "$ns" addr add "$underlay_cidr" dev br-phy
    ip -n "$ns" link set br-phy up
  fi
  in_ns "$ns" ovn-controller "unix:$c/run/db.sock" --detach --no-chdir --pidfile="$c/run/ovn-controller.pid" \
    --log-file="$c/log/ovn-controller.log" 2>>"$c/log/ovn-controller.stderr"
}

stop_chassis() {
  local name=$1 c=$dir/chassis-$1 ns=""
  [ -d "$c" ] || return 0
  [ -f "$c/netns" ] && ns=$(cat "$c/netns")
  stop_pidfile "$c/run/ovn-controller.pid"
  # exit --cleanup also deletes the bridges' netdev taps (br-int, ovs-netdev), which outlive a plain TERM.
  local pid; pid=$(pid_of "$c/run/ovs-vswitchd.pid")
  if alive "$pid"; then timeout 10 ovs-appctl -t "$c/run/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1 || true; fi
  stop_pidfile "$c/run/ovs-vswitchd.pid"
  stop_pidfile "$c/run/ovsdb-server.pid"
  if [ -n "$ns" ]; then
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$c/netns"
  elif [ "$name" = root ] && [ "$(cat "$root_claim" 2>/dev/null || true)" = "$dir" ]; then
    # Only a vswitchd killed without --cleanup leaves these; they are ours while we hold the claim.
    ip link del br-int 2>/dev/null || true
    ip link del ovs-netdev 2>/dev/null || true
    release_root
  fi
}

stop_all() {
  for c in "$dir"/chassis-*; do [ -d "$c" ] && stop_chassis "${c##*/chassis-}"; done
  stop_central
  if [ -n "$underlay_ns" ]; then ip netns del "$underlay_ns" 2>/dev/null || true; fi
}

case "${1:-start}" in
  start) start_central; start_chassis root ;;
  stop) stop_all ;;
  start-central) start_central ;;
  stop-central) stop_central ;;
  start-chassis) shift; start_chassis "$@" ;;
  stop-chassis) stop_chassis "$2" ;;
  *) echo "usage: $0 start|stop|start-central|stop-central|start-chassis NAME [NETNS UNDERLAY_CIDR]|stop-chassis NAME" >&2; exit 2 ;;
esac

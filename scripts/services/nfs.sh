#!/usr/bin/env bash
# Starts/stops a userspace NFS server for NFS storage pools (see shared recipe iscsi-nfs.md, B):
# rpcbind + nfs-ganesha (FSAL VFS, NFS v3+v4, TCP, 127.0.0.1) exporting $QX_NFS_DIR/export.
# These machines have no kernel NFS; qemu and libvirt reach the export through libnfs (nfs:// URLs).
# All state (config, logs, pid files, v4 recovery dir) lives under $QX_NFS_DIR. Idempotent.
set -euo pipefail
cmd=${1:-start}
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${QX_NFS_DIR:-$repo_root/.data/nfs}
export_dir=$dir/export
ganesha_pid_file=$dir/ganesha.pid
rpcbind_pid_file=$dir/rpcbind.pid

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }
# The socket binds [::ffff:127.0.0.1]:2049, so check the port only; rpcinfo proves NFSv3 registered.
ganesha_ready() { listening 2049 && rpcinfo -t 127.0.0.1 nfs 3 >/dev/null 2>&1; }

# wait_for PID_FILE NAME CHECK...: polls CHECK for up to 10 s while the daemon is alive; fails fast if it died.
wait_for() {
  local pid_file=$1 what=$2
  shift 2
  for _ in $(seq 1 100); do
    if "$@"; then return 0; fi
    if [ -f "$pid_file" ] && ! alive "$pid_file"; then break; fi
    sleep 0.1
  done
  echo "$what did not become ready" >&2
  return 1
}

write_config() {
  # Bind_addr 127.0.0.1: the export is for this host's qemu only. NLM/RQUOTA/UDP off: libnfs needs none.
  # No_Root_Squash: qemu runs as root and creates its files 0600 root (recipe B).
  cat >"$dir/ganesha.conf" <<EOF
NFS_CORE_PARAM { Bind_addr = 127.0.0.1; Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048;
                 Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }
NFSV4 { Graceless = true; RecoveryRoot = $dir/ganesha-recov; }
EXPORT { Export_Id = 1; Path = $export_dir; Pseudo = $export_dir; Access_Type = RW;
         Squash = No_Root_Squash; SecType = sys; Protocols = 3, 4; Transports = TCP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
EOF
}

start_rpcbind() {
  # rpcbind is host-wide (port 111): reuse one that runs already and record a pid only for ours,
  # so stop never kills a portmapper other services registered with.
  if listening 111; then return 0; fi
  # `rpcbind -h 127.0.0.1` aborts with a double free (recipe pitfall): it listens on all addresses.
  rpcbind -f >"$dir/rpcbind.log" 2>&1 &
  echo $! >"$rpcbind_pid_file"
  wait_for "$rpcbind_pid_file" rpcbind listening 111
}

start_ganesha() {
  if alive "$ganesha_pid_file" && listening 2049; then return 0; fi
  if listening 2049; then echo "port 2049 is taken by another NFS server" >&2; return 1; fi
  write_config
  # -F keeps it in the foreground so its pid is ours; ganesha writes -p itself and removes it on exit.
  ganesha.nfsd -F -f "$dir/ganesha.conf" -L "$dir/ganesha.log" -p "$ganesha_pid_file" >/dev/null 2>&1 &
  echo $! >"$ganesha_pid_file"
  if ! wait_for "$ganesha_pid_file" ganesha.nfsd ganesha_ready; then
    tail -5 "$dir/ganesha.log" >&2 || true
    return 1
  fi
}

start() {
  mkdir -p "$export_dir" "$dir/ganesha-recov"
  start_rpcbind
  start_ganesha
}

stop_pid_file() {
  local pid_file=$1
  if alive "$pid_file"; then
    local pid
    pid=$(cat "$pid_file")
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  fi
  rm -f "$pid_file"
}

stop() {
  stop_pid_file "$ganesha_pid_file"
  stop_pid_file "$rpcbind_pid_file"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

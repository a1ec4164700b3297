#!/usr/bin/env bash
# Starts/stops the host's libvirtd + virtlogd without systemd (see shared recipe libvirt.md).
# The QEMU driver runs guests as root (qemu.conf), as the recipe's verified set-up does.
set -euo pipefail
cmd=${1:-start}

start() {
  if pgrep -x libvirtd >/dev/null && virsh -c qemu:///system -q version >/dev/null 2>&1; then return 0; fi
  mkdir -p /etc/libvirt /var/lib/libvirt /run/libvirt /var/log/libvirt /var/cache/libvirt
  # libvirt-daemon-system (not installed: it needs systemd) would create these; the QEMU driver
  # looks them up at start even when guests run as root.
  getent group kvm >/dev/null || groupadd --system kvm
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home -g libvirt-qemu -G kvm -s /usr/sbin/nologin libvirt-qemu
  if ! grep -q '^user *= *"root"' /etc/libvirt/qemu.conf 2>/dev/null; then
    printf 'user = "root"\ngroup = "root"\n' >> /etc/libvirt/qemu.conf
  fi
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 1 100); do
    virsh -c qemu:///system -q version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "libvirtd did not answer on qemu:///system" >&2
  tail -20 /var/log/libvirt/libvirtd.log >&2 2>/dev/null || true
  return 1
}

stop() {
  for d in libvirtd virtlogd; do
    pkill -x "$d" 2>/dev/null || continue
    for _ in $(seq 1 100); do pgrep -x "$d" >/dev/null || break; sleep 0.1; done
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Builds the test guest: a bootable ISO (isolinux) holding Debian's current linux-image-*-amd64
# kernel and busybox-static (both downloaded with apt-get and unpacked, never installed: the
# busybox package, which others may install, replaces busybox-static's /bin/busybox with a
# dynamically linked one), and qemu-ga with its libraries, and prints its path. The guest boots in seconds under TCG, runs qemu-ga over
# virtio-serial (agent version 1.0.0 in Quantix's A/B layout, see README "Guest agent"), formats
# its first virtio disk to have a real filesystem to freeze, and runs udhcpc on every NIC.
# Idempotent and cached under .data/test-guest/<content hash>: the hash covers this script, the
# files in scripts/test-guest/, the kernel package's version and the binaries copied in.
#
#   bash scripts/build-test-guest.sh            # → /…/.data/test-guest/<hash>/test-guest.iso
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/scripts/test-guest"
cache="$root/.data/test-guest"
AGENT_VERSION=1.0.0
# Modules the guest needs, with what modinfo says they depend on resolved at build time
# (the .deb ships no modules.dep): virtio PCI and console (the agent's port), virtio disks,
# ext4 (FIFREEZE needs it; crc32c is its soft dependency), virtio NICs.
MODULES="virtio_pci virtio_console virtio_blk crc32c_generic ext4 virtio_net"
for tool in apt-get dpkg-deb genisoimage modinfo cpio; do
  command -v "$tool" >/dev/null || { echo "build-test-guest: $tool is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done
QEMU_GA=/usr/sbin/qemu-ga; ISOLINUX=/usr/lib/ISOLINUX/isolinux.bin; LDLINUX=/usr/lib/syslinux/modules/bios/ldlinux.c32
for f in "$QEMU_GA" "$ISOLINUX" "$LDLINUX"; do [ -f "$f" ] || { echo "build-test-guest: $f is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }; done

kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(kernel_package)
if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(kernel_package); fi
[ -n "$pkg" ] || { echo "build-test-guest: apt-cache knows no linux-image-amd64" >&2; exit 1; }
candidate() { apt-cache policy "$1" | awk '/Candidate:/ {print $2}'; }
pkg_version=$(candidate "$pkg")
busybox_version=$(candidate busybox-static)

hash=$( { echo "$pkg $pkg_version busybox-static $busybox_version $AGENT_VERSION $MODULES"; cat "$0" "$src"/*; sha256sum "$QEMU_GA" "$ISOLINUX" "$LDLINUX"; } | sha256sum | cut -c1-16)
out="$cache/$hash"
if [ -f "$out/test-guest.iso" ]; then echo "$out/test-guest.iso"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
for p in "$pkg" busybox-static; do
  (cd "$work" && apt-get download -qq "$p" 2>/dev/null) || (cd "$work" && apt-get download "$p" >&2)
done
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
BUSYBOX="$work/busybox/bin/busybox"
kver=$(ls "$work/kernel/lib/modules" | head -1)
kmod="$work/kernel/lib/modules/$kver"

r="$work/initrd"
mkdir -p "$r"/{bin,sbin,usr/sbin,proc,sys,dev,run,tmp,etc,lib/modules,var/lib/quantix-agent/versions,data}
ln -s ../run "$r/var/run"
cp "$BUSYBOX" "$r/bin/busybox"
for a in $("$BUSYBOX" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
for l in $(ldd "$QEMU_GA" | grep -o '/[^ ]*'); do mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"; done

# Modules in an order where each comes after what it depends on (depth-first over modinfo's depends).
declare -A seen=()
order=()
add_module() {
  local m=$1 file dep
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  file=$(find "$kmod" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
  [ -n "$file" ] || { echo "build-test-guest: module $m not in $pkg" >&2; exit 1; }
  for dep in $(modinfo -F depends "$file" | tr ',' ' '); do add_module "$dep"; done
  case "$file" in *.xz) xz -dc "$file" > "$r/lib/modules/$m.ko" ;; *) cp "$file" "$r/lib/modules/$m.ko" ;; esac
  order+=("$m")
}
for m in $MODULES; do add_module "$m"; done
printf '%s\n' "${order[@]}" > "$r/lib/modules/load-order"

install -m 0755 "$src/init" "$r/init"
install -m 0755 "$src/shutdown" "$r/sbin/shutdown"
install -m 0755 "$src/udhcpc.script" "$r/etc/udhcpc.script"
install -m 0644 "$src/os-release" "$r/etc/os-release"
# The agent as Quantix installs it: one directory per version, `current` pointing at the running one.
v="$r/var/lib/quantix-agent/versions/$AGENT_VERSION"
mkdir -p "$v/bin"
install -m 0755 "$src/agent" "$v/agent"
install -m 0755 "$QEMU_GA" "$v/bin/qemu-ga"
ln -s "versions/$AGENT_VERSION" "$r/var/lib/quantix-agent/current"

iso="$work/iso"
mkdir -p "$iso/boot" "$iso/isolinux"
(cd "$r" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -6) > "$iso/boot/initrd.gz"
cp "$work/kernel/boot/vmlinuz-$kver" "$iso/boot/vmlinuz"
cp "$ISOLINUX" "$LDLINUX" "$iso/isolinux/"
cp "$src/isolinux.cfg" "$iso/isolinux/isolinux.cfg"
genisoimage -quiet -o "$work/test-guest.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table -R -J -V QXTESTGUEST "$iso"
mkdir -p "$out"
mv "$work/test-guest.iso" "$out/test-guest.iso.partial" && mv "$out/test-guest.iso.partial" "$out/test-guest.iso"
echo "$out/test-guest.iso"

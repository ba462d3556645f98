#!/usr/bin/env bash
# Builds the test VM's initramfs: a static busybox, the modules that mount
# the host's root over virtio 9p under an overlay, and hack/vm/init.
# Usage: mkinitramfs.sh KERNEL_VERSION SRC_DIR OUTPUT
set -euo pipefail
kver=$1 src=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp"/{bin,dev,proc,sys,modules}
cp /bin/busybox "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
echo "$src" >"$tmp/srcdir"

# The modules and what they need, dependencies first.
declare -A seen=()
order=()
add() {
	local m=${1//-/_} d
	[[ -n ${seen[$m]:-} ]] && return
	seen[$m]=1
	for d in $(modinfo -k "$kver" -F depends "$m" | tr , ' '); do add "$d"; done
	local f
	f=$(modinfo -k "$kver" -F filename "$m")
	case $f in
	(builtin|"") return ;;
	(*.ko) cp "$f" "$tmp/modules/$m.ko" ;;
	(*.ko.xz) xz -dc "$f" >"$tmp/modules/$m.ko" ;;
	(*.ko.zst) zstd -qdc "$f" >"$tmp/modules/$m.ko" ;;
	esac
	order+=("$m")
}
# virtio_blk and ext4: the disk the guest keeps the daemon's root on.
for m in virtio_ring virtio virtio_pci 9pnet 9pnet_virtio 9p overlay virtio_blk ext4; do add "$m"; done
printf '%s\n' "${order[@]}" >"$tmp/modules/order"

(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"

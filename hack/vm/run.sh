#!/usr/bin/env bash
# `make test-vm`: boots a QEMU VM (TCG, no KVM needed) on Debian's kernel
# with the host's root shared read-only over 9p under a tmpfs overlay,
# systemd as init, cgroup v2 and AppArmor, and runs hack/vm/guest.sh in it:
# the daemon installed by `make install` and run from the shipped unit
# (contrib/systemd), critest against it. Results come back through a
# writable 9p share (bin/vm/out); this script fails when any check failed.
#
# Environment: VM_CHECKS ("service systemd-driver checkpoint critest e2e": the
# groups of checks; E2E_TESTS a -test.run pattern), CGROUP_DRIVER (cgroupfs),
# CRITEST_ARGS (extra critest flags, e.g. -ginkgo.focus=...), VM_TIMEOUT
# (seconds, 1500: the whole lane takes about 17 minutes under TCG on 2
# cores), VM_MEMORY (4G), VM_CPUS (all of the host's, at most 4).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$src/bin/vm/out
: "${VM_CHECKS:=service systemd-driver checkpoint critest e2e}" "${CGROUP_DRIVER:=cgroupfs}" "${CRITEST_ARGS:=}"
: "${VM_TIMEOUT:=1500}" "${VM_MEMORY:=4G}" "${VM_CPUS:=$(($(nproc) < 4 ? $(nproc) : 4))}"

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
compgen -G '/boot/vmlinuz-*-amd64' >/dev/null || missing+=(linux-image-amd64)
command -v cpio >/dev/null || missing+=(cpio)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
# critest loads its AppArmor test profiles with `sudo apparmor_parser`.
command -v sudo >/dev/null || missing+=(sudo)
command -v apparmor_parser >/dev/null || missing+=(apparmor)
if ((${#missing[@]})); then
	[[ $(id -u) -eq 0 ]] || { echo "test-vm: missing ${missing[*]}; run as root (sudo)" >&2; exit 1; }
	echo "test-vm: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The newest Debian kernel whose modules are installed: the VM loads more of
# them (bridge, veth, netfilter…) from the shared root.
kver=
for k in $(ls /boot/vmlinuz-*-amd64 | sed 's|/boot/vmlinuz-||' | sort -V); do
	[[ -d /lib/modules/$k/kernel ]] && kver=$k
done
[[ -n $kver ]] || { echo "test-vm: no /boot/vmlinuz-*-amd64 with modules" >&2; exit 1; }

# What the VM runs, built here: the guest has no network and TCG is slow.
# bin/cri-runtime, bin/critest and bin/crictl come from `make build tools`.
cd "$src"
tags="containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"
mkdir -p bin/vm
go test -c -tags "$tags" -o bin/vm/critest.test ./test/critest/
# The e2e binary: the e2e group, and the checkpoint group's CheckpointPod
# round trip (hack/vm/checkpoint.sh).
if [[ " $VM_CHECKS " == *" e2e "* || " $VM_CHECKS " == *" checkpoint "* ]]; then
	go test -c -tags "$tags" -o bin/vm/e2e.test ./test/e2e/
	# The daemon the e2e tests run: the test build, with the crash points.
	go build -tags "$tags crashpoints" -o bin/vm/cri-runtime-test ./cmd/cri-runtime
fi
# Warm the build cache for the image helper TestServeCritestImages builds in
# the guest (the guest sees this cache through its overlay).
(cd test/critest && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -buildid=" -o /dev/null ./imagebin)
hack/vm/mkinitramfs.sh "$kver" "$src" bin/vm/initrd.gz
# A disk of its own for the daemon's root and the tests' temporary files:
# ext4, as on a real node (the guest's tmpfs has no idmapped mounts before
# Linux 6.3, which user-namespaced pods need). Sparse: it costs what is used.
rm -f bin/vm/disk.img
truncate -s 32G bin/vm/disk.img
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 bin/vm/disk.img

rm -rf "$out"
mkdir -p "$out"
cat >"$out/env" <<ENV
SRC=$src
VM_CHECKS="$VM_CHECKS"
CGROUP_DRIVER=$CGROUP_DRIVER
CRITEST_ARGS="$CRITEST_ARGS"
${E2E_TESTS:+E2E_TESTS=$E2E_TESTS}
ENV

echo "test-vm: booting kernel $kver, $VM_CPUS CPUs, $VM_MEMORY; console in $out/console.log; checks: $VM_CHECKS"
start=$SECONDS
rc=0
timeout "$VM_TIMEOUT" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp "$VM_CPUS" -m "$VM_MEMORY" \
	-nographic -no-reboot -nic none \
	-kernel "/boot/vmlinuz-$kver" -initrd bin/vm/initrd.gz \
	-append "console=ttyS0 quiet panic=-1 systemd.unified_cgroup_hierarchy=1 systemd.unit=cri-vm.target systemd.show_status=0 apparmor=1 security=apparmor" \
	-virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
	-drive file=bin/vm/disk.img,if=virtio,format=raw,cache=unsafe \
	</dev/null >"$out/console.log" 2>&1 || rc=$?
echo "test-vm: the VM ran for $((SECONDS - start))s (qemu exit $rc)"
rm -f bin/vm/disk.img

cat "$out/results" 2>/dev/null || true
if ((rc == 124)); then
	echo "test-vm: timed out after ${VM_TIMEOUT}s; the end of the console:" >&2
	sed 's/\x1b\[[0-9;]*[mK]//g' "$out/console.log" | tail -40 >&2
	exit 1
fi
if [[ ! -s $out/results ]] || ! grep -q '^PASS' "$out/results" || grep -q '^FAIL' "$out/results"; then
	echo "test-vm: FAILED; logs in $out (guest.log, cri-runtime.journal, critest.log, console.log)" >&2
	tail -40 "$out/guest.log" >&2 2>/dev/null || true
	exit 1
fi
echo "test-vm: all checks passed"

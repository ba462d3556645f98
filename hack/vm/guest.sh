#!/usr/bin/env bash
# The tests run inside the VM (hack/vm/run.sh boots it; cri-vm-test.service
# runs this as root under systemd, cgroup v2, AppArmor). It installs the
# daemon with `make install` and the shipped unit, then checks the service's
# life cycle, runs critest against the service's socket, and selected e2e
# tests. Every check appends "PASS name" or "FAIL name" to /vm-out/results;
# logs go to /vm-out too. Never run this on a host.
set -uo pipefail
: "${SRC:?}" "${VM_CHECKS:=service systemd-driver checkpoint critest e2e}"
OUT=/vm-out
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin
export HOME=/root GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
exec > >(tee -a "$OUT/guest.log") 2>&1
[[ $(cat /proc/1/comm) == systemd ]] || { echo "guest.sh: not in the test VM"; exit 1; }

SOCK=/run/cri-runtime/cri-runtime.sock
CRICTL=("$SRC/bin/crictl" -r "unix://$SOCK" -i "unix://$SOCK" -t 60s)
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
failed=0

bad=0
check() { # check NAME COMMAND...: runs COMMAND, records its result
	local name=$1 start=$SECONDS
	shift
	echo "=== $name"
	bad=0
	if "$@" && ((bad == 0)); then
		echo "PASS $name ($((SECONDS - start))s)" | tee -a "$OUT/results"
	else
		echo "FAIL $name ($((SECONDS - start))s)" | tee -a "$OUT/results"
		failed=1
	fi
}

# fail MESSAGE: the current check fails (and goes on, to say more).
fail() {
	echo "  FAILED: $*"
	bad=1
	return 1
}

prop() { systemctl show -P "$1" cri-runtime; }

# shellcheck source=hack/vm/checkpoint.sh
. "$SRC/hack/vm/checkpoint.sh"

# --- setup -----------------------------------------------------------------
# The root is an overlay on tmpfs, which overlayfs cannot use as an upper
# layer: the image store and temporary files go on the VM's ext4 disk
# (run.sh), as on a real node.
mkdir -p /disk /var/lib/cri-runtime
mount /dev/vda /disk || echo "FAIL setup: cannot mount the VM's disk /dev/vda" >>"$OUT/results"
mkdir -p /disk/root /disk/tmp
chmod 0711 /disk/root
chmod 1777 /disk/tmp
mount --bind /disk/root /var/lib/cri-runtime
# A checkout under /tmp (a clone made there) would be hidden by the disk's
# /tmp: it is bound back to its own path on top.
if [[ $SRC == /tmp/* ]]; then
	mkdir -p /run/crirt-src
	mount --rbind "$SRC" /run/crirt-src
fi
mount --bind /disk/tmp /tmp
if [[ $SRC == /tmp/* ]]; then
	mkdir -p "$SRC"
	mount --rbind /run/crirt-src "$SRC"
fi
: >/etc/crictl.yaml # the flags say it all
echo "kernel $(uname -r); cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers);" \
	"AppArmor: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo no); $(runc --version | head -1)"

setup_images() {
	# critest's images, built and served on the VM's own loopback by
	# test/critest's TestServeCritestImages (the host built its binary).
	mkdir -p /etc/cri-runtime/config.d
	(cd "$SRC/test/critest" && CRITEST_SERVE_IMAGES=/etc/cri-runtime/critest-registries.conf \
		exec "$SRC/bin/vm/critest.test" -test.run '^TestServeCritestImages$' -test.v -test.timeout 2h \
		>"$OUT/image-server.log" 2>&1) &
	local i
	for ((i = 0; i < 600; i++)); do
		[[ -s /etc/cri-runtime/critest-registries.conf ]] && return 0
		sleep 1
	done
	fail "no critest images after 600s"
}

configure() { # configure DRIVER: the daemon's drop-in
	cat >/etc/cri-runtime/config.d/50-vm.toml <<-TOML
	cgroup_driver = "$1"
	[image]
	registries_conf = "/etc/cri-runtime/critest-registries.conf"
	TOML
}

install_service() {
	cd "$SRC" && make -o build install || return
	configure "${CGROUP_DRIVER:-cgroupfs}"
	# A short watchdog, so that the test sees missing pings.
	mkdir -p /etc/systemd/system/cri-runtime.service.d
	printf '[Service]\nWatchdogSec=10s\n' >/etc/systemd/system/cri-runtime.service.d/50-vm.conf
	systemctl daemon-reload
}

# --- (a) the service's life cycle ----------------------------------------
service_start() {
	# Type=notify: start returns once the daemon said READY=1.
	systemctl start cri-runtime || { journalctl -u cri-runtime --no-pager | tail -30; return 1; }
	[[ $(prop ActiveState) == active && $(prop SubState) == running ]] || fail "not active: $(prop ActiveState)/$(prop SubState)"
	[[ -S $SOCK ]] || fail "no socket $SOCK"
	"${CRICTL[@]}" version
	echo "  main PID $(prop MainPID), cgroup $(prop ControlGroup), watchdog $(prop WatchdogUSec)"
}

POD= CTR= CTR_PID= CONMON_PID=
pod_running() {
	local d=/tmp/vm-pod
	mkdir -p $d
	cat >$d/pod.json <<-JSON
	{"metadata": {"name": "vm-pod", "namespace": "default", "uid": "vm-pod-uid"}, "log_directory": "$d/logs", "linux": {}}
	JSON
	cat >$d/ctr.json <<-JSON
	{"metadata": {"name": "sleeper"}, "image": {"image": "$BUSYBOX"}, "command": ["sleep", "3600"], "log_path": "sleeper.log",
	 "linux": {"resources": {"memory_limit_in_bytes": 67108864}}}
	JSON
	"${CRICTL[@]}" pull "$BUSYBOX" || return
	POD=$("${CRICTL[@]}" runp $d/pod.json) || return
	CTR=$("${CRICTL[@]}" create "$POD" $d/ctr.json $d/pod.json) || return
	"${CRICTL[@]}" start "$CTR" || return
	CTR_PID=$("${CRICTL[@]}" inspect -o go-template --template '{{.info.pid}}' "$CTR") || return
	CONMON_PID=$(ps -o ppid= -p "$CTR_PID" | tr -d ' ')
	echo "  container $CTR: PID $CTR_PID, cgroup $(cut -d: -f3 </proc/$CTR_PID/cgroup)"
	echo "  conmon PID $CONMON_PID ($(cat /proc/$CONMON_PID/comm)), cgroup $(cut -d: -f3 </proc/$CONMON_PID/cgroup)"
	[[ $(cat /proc/$CONMON_PID/comm) == conmon ]] || fail "the container's parent is not conmon"
	# cgroup v2: a domain cgroup (a threaded one has no memory controller and
	# no cgroup.kill), with the limit asked for.
	local cg=/sys/fs/cgroup$(cut -d: -f3 </proc/$CTR_PID/cgroup)
	[[ -d $cg ]] || { fail "no $cg"; cat /proc/$CTR_PID/cgroup; systemd-cgls --no-pager | head -60; }
	[[ $(cat $cg/cgroup.type) == domain ]] || fail "the container's cgroup is $(cat $cg/cgroup.type)"
	[[ $(cat $cg/memory.max 2>&1) == 67108864 ]] || fail "memory.max is $(cat $cg/memory.max 2>&1), want 67108864"
	# The pod shares a PID namespace (the CRI default), so it has an init:
	# in the pod's cgroup (a leaf of it with cgroupfs, a scope in its slice
	# with systemd), never left in the service's. Only the daemon is there.
	local pause
	pause=$(pgrep -f '^/usr/local/bin/cri-runtime(-helper)? pause' | head -1)
	[[ -n $pause ]] || fail "no pod init (cri-runtime-helper pause) running"
	echo "  pod init PID $pause, cgroup $(cut -d: -f3 </proc/$pause/cgroup 2>/dev/null)"
	case $(cut -d: -f3 </proc/$pause/cgroup 2>/dev/null) in
	*/crirt-pause-*.scope | */pause) ;;
	*) fail "the pod's init is not in the pod's cgroup" ;;
	esac
	local procs
	procs=$(cat "/sys/fs/cgroup$(prop ControlGroup)/cgroup.procs" | tr '\n' ' ')
	[[ $procs == "$(prop MainPID) " ]] || fail "the service's cgroup holds $procs; want only the daemon $(prop MainPID)"
}

restart_keeps_container() {
	local before
	before=$(prop MainPID)
	systemctl restart cri-runtime || return
	[[ $(prop MainPID) != "$before" ]] || fail "MainPID did not change"
	local state pid
	state=$("${CRICTL[@]}" inspect -o go-template --template '{{.status.state}}' "$CTR") || return
	pid=$("${CRICTL[@]}" inspect -o go-template --template '{{.info.pid}}' "$CTR") || return
	echo "  after restart: $state, PID $pid"
	[[ $state == CONTAINER_RUNNING ]] || fail "container is $state"
	[[ $pid == "$CTR_PID" ]] || fail "container PID changed: $CTR_PID -> $pid"
	kill -0 "$CTR_PID" && kill -0 "$CONMON_PID" || fail "the container or its conmon died"
	[[ $(prop NRestarts) == 0 ]] || fail "systemd restarted the service itself $(prop NRestarts) times"
}

watchdog_fed() {
	# WatchdogSec=10s: a daemon that does not ping is killed within 10s.
	local pid
	pid=$(prop MainPID)
	sleep 25
	[[ $(prop MainPID) == "$pid" && $(prop NRestarts) == 0 && $(prop ActiveState) == active ]] ||
		fail "service restarted: PID $pid -> $(prop MainPID), NRestarts $(prop NRestarts)"
}

pod_removed() {
	"${CRICTL[@]}" stopp "$POD" && "${CRICTL[@]}" rmp "$POD" || return
	! kill -0 "$CTR_PID" 2>/dev/null || fail "container still runs"
}

service_stop() {
	systemctl stop cri-runtime || return
	[[ $(prop ActiveState) == inactive ]] || fail "not inactive: $(prop ActiveState)"
	[[ ! -e $SOCK ]] || fail "socket left behind"
	journalctl -u cri-runtime --no-pager -o cat | grep -q "shutting down" || fail "no graceful shutdown in the journal"
}

# --- (b) critest against the service ---------------------------------------
run_critest() {
	local skip
	# known-failures.txt lines, as one regular expression for -ginkgo.skip.
	skip=$(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' "$SRC/test/critest/known-failures.txt" |
		sed -e 's/[][\.*^$(){}+?|/]/\\&/g' | paste -sd'|')
	# critest loads its AppArmor profiles with `sudo apparmor_parser`
	# (run.sh installs both on the host, whose root the VM shares).
	if ! command -v apparmor_parser >/dev/null || ! command -v sudo >/dev/null; then
		fail "no apparmor_parser or sudo on the shared root: critest's AppArmor specs cannot run"
	fi
	mkdir -p /tmp/critest /disk/critest-var-lib
	local idmap='Host.idmap.mount.support.is.needed' rc=0 # dots: no spaces to split
	critest_run critest "$skip|$idmap" "${CRITEST_ARGS:-}" || rc=1
	# The specs that need idmapped mounts first try one on /var/lib (the
	# parent of containerd's state directory), which here is the shared
	# root's overlay, which has none; a real node's is on its root disk. They
	# run in a mount namespace of their own whose /var/lib is a directory of
	# the VM's disk. (All of critest cannot: its mount propagation specs need
	# the daemon's mount namespace.)
	if [[ -z ${CRITEST_ARGS:-} ]]; then
		critest_run critest-idmap "$skip" "-ginkgo.focus=$idmap" \
			unshare -m sh -c 'mount --bind /disk/critest-var-lib /var/lib && exec "$@"' critest || rc=1
	fi
	return $rc
}

# critest_run NAME SKIP ARGS [WRAPPER...]: one critest run, logged to
# $OUT/NAME.log with its JSON report $OUT/NAME-report.json.
critest_run() {
	local name=$1 skip=$2 args=$3
	shift 3
	(cd /tmp/critest && timeout "${CRITEST_TIMEOUT:-900}" "$@" "$SRC/bin/critest" \
		-runtime-endpoint "unix://$SOCK" -image-endpoint "unix://$SOCK" \
		-config /tmp/critest/crictl.yaml -ginkgo.no-color \
		-ginkgo.json-report "$OUT/$name-report.json" \
		-ginkgo.skip "$skip" $args >"$OUT/$name.log" 2>&1)
	local rc=$?
	echo "  $name:"
	grep -E "^(Ran|FAIL|PASS|SUCCESS)|\[FAIL\]" "$OUT/$name.log" | tail -30
	return $rc
}

# --- (c) e2e tests on cgroup v2 and systemd ----------------------------------
# Those whose subject is cgroups (resources, OOM, stats, the pod's cgroup
# parent and PID namespace, and restarts with containers kept) or AppArmor. Not
# TestPodSandboxMetrics: its container gets 20% of a CPU, which under TCG
# did not finish its work in minutes.
E2E_TESTS=${E2E_TESTS:-'^(TestAppArmor|TestUpdateContainerResources|TestContainerOOMKilled|TestPodSandboxStats|TestPodSandboxCgroupParent|TestPodSandboxPidNamespace|TestRestartAfterKillKeepsContainers|TestContainerStop)$'}
run_e2e() {
	(cd "$SRC/test/e2e" && CRI_RUNTIME_BINARY=$SRC/bin/cri-runtime CRI_RUNTIME_TEST_BINARY=$SRC/bin/vm/cri-runtime-test \
		timeout "${E2E_TIMEOUT:-600}" "$SRC/bin/vm/e2e.test" -test.run "$E2E_TESTS" -test.v -test.timeout 20m \
		>"$OUT/e2e.log" 2>&1)
	local rc=$?
	grep -E "^(--- |ok|FAIL|PASS)" "$OUT/e2e.log" | tail -30
	return $rc
}

if setup_images && install_service; then
	for c in $VM_CHECKS; do
		case $c in
		service)
			check service-start service_start
			check pod-running pod_running
			check restart-keeps-container restart_keeps_container
			check watchdog-fed watchdog_fed
			check pod-removed pod_removed
			check service-stop service_stop
			;;
		systemd-driver)
			# The same life cycle with the other cgroup driver: pods in
			# slices, containers in scopes.
			configure systemd
			check systemd-driver-start service_start
			check systemd-driver-pod-running pod_running
			check systemd-driver-restart restart_keeps_container
			check systemd-driver-pod-removed pod_removed
			check systemd-driver-stop service_stop
			configure "${CGROUP_DRIVER:-cgroupfs}"
			;;
		checkpoint)
			systemctl start cri-runtime
			check checkpoint-restore checkpoint_restore
			systemctl stop cri-runtime
			# A daemon of its own (the e2e framework's): the service is down.
			check checkpoint-pod checkpoint_pod
			;;
		critest)
			systemctl start cri-runtime
			check "critest-${CGROUP_DRIVER:-cgroupfs}" run_critest
			systemctl stop cri-runtime
			;;
		e2e)
			# Selected e2e tests (the host built their binary): each starts
			# daemons of its own, so the service is down meanwhile.
			check e2e run_e2e
			;;
		esac
	done
else
	echo "FAIL setup" >>"$OUT/results"
	failed=1
fi
journalctl -u cri-runtime --no-pager >"$OUT/cri-runtime.journal" 2>&1
journalctl -b --no-pager >"$OUT/journal" 2>&1
echo "guest.sh: done after ${SECONDS}s"
exit $failed

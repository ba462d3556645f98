# Checkpoint and restore, sourced by hack/vm/guest.sh
# (which defines CRICTL, BUSYBOX, OUT and fail): a container counting in
# memory is checkpointed while it runs, removed with its pod, restored
# into a new pod from the archive, and goes on counting from where it was,
# with the files it changed; the archive opens with plain tar.

# cp_count LOG: the last number the counter wrote to its CRI log.
cp_count() { awk '$2 == "stdout" && $4 ~ /^[0-9]+$/ {n = $4} END {print n + 0}' "$1" 2>/dev/null; }

# cp_wait_count LOG MIN: waits (up to 120s: TCG is slow) for a count >= MIN.
cp_wait_count() {
	local i
	for ((i = 0; i < 240; i++)); do
		(($(cp_count "$1") >= $2)) && return 0
		sleep 0.5
	done
	fail "$1: count $(cp_count "$1") after 120s, want >= $2"
}

checkpoint_restore() {
	local d=/tmp/vm-checkpoint
	rm -rf $d && mkdir -p $d/logs1 $d/logs2
	# CRIU needs a loopback (its own sockets, and the pod's netns is
	# dumped as external but the host's must be sane).
	ip link set lo up
	criu check || { fail "criu check refuses this kernel"; return 1; }
	"${CRICTL[@]}" info | grep -A4 '"checkpoint"' | head -8
	"${CRICTL[@]}" info | grep -q '"available": true' || fail "crictl info does not say checkpoint/restore is available"

	cat >$d/pod1.json <<-JSON
	{"metadata": {"name": "cp-pod", "namespace": "default", "uid": "cp-pod-1"}, "log_directory": "$d/logs1", "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
	JSON
	cat >$d/pod2.json <<-JSON
	{"metadata": {"name": "cp-pod-restored", "namespace": "default", "uid": "cp-pod-2"}, "log_directory": "$d/logs2", "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
	JSON
	# The count lives only in the shell's memory; the file changes are a
	# new file and a deleted one of the image. A PID namespace per
	# container, as the kubelet asks unless a pod shares one: CRIU gives
	# the restored processes back their PIDs, which in a namespace shared
	# with the new pod's init (and its threads) may be taken.
	cat >$d/ctr.json <<-JSON
	{"metadata": {"name": "counter"}, "image": {"image": "$BUSYBOX"}, "log_path": "counter.log",
	 "command": ["sh", "-c", "echo kept >/tmp/made-here; rm /etc/group; i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.5; done"],
	 "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
	JSON
	sed "s|\"image\": \"$BUSYBOX\"|\"image\": \"$d/cp.tar\"|" $d/ctr.json >$d/restore.json

	"${CRICTL[@]}" pull "$BUSYBOX" >/dev/null || return
	local pod ctr
	pod=$("${CRICTL[@]}" runp $d/pod1.json) || return
	ctr=$("${CRICTL[@]}" create "$pod" $d/ctr.json $d/pod1.json) || return
	"${CRICTL[@]}" start "$ctr" || return
	cp_wait_count $d/logs1/counter.log 5 || return

	local before after start=$SECONDS
	before=$(cp_count $d/logs1/counter.log)
	"${CRICTL[@]}" checkpoint --export=$d/cp.tar "$ctr" || { fail "crictl checkpoint failed"; journalctl -u cri-runtime --no-pager | tail -20; return 1; }
	after=$(cp_count $d/logs1/counter.log)
	echo "  checkpointed in $((SECONDS - start))s at a count between $before and $after; archive $(du -h $d/cp.tar | cut -f1)"
	[[ $("${CRICTL[@]}" inspect -o go-template --template '{{.status.state}}' "$ctr") == CONTAINER_RUNNING ]] ||
		fail "the container is not running after its checkpoint (--leave-running)"
	cp_wait_count $d/logs1/counter.log $((after + 1)) # and it goes on counting

	# Plain tar reads it; it has CRI-O's layout.
	tar -tf $d/cp.tar >$d/members || fail "tar cannot list the archive"
	local m
	for m in checkpoint/inventory.img config.dump spec.dump rootfs-diff.tar deleted.files; do
		grep -qx "$m" $d/members || fail "the archive has no $m"
	done
	tar -xOf $d/cp.tar deleted.files | grep -q '"/etc/group"' || fail "deleted.files does not list /etc/group"
	tar -xOf $d/cp.tar rootfs-diff.tar | tar -t | grep -qx 'tmp/made-here' || fail "rootfs-diff.tar has no tmp/made-here"

	"${CRICTL[@]}" rm -f "$ctr" >/dev/null && "${CRICTL[@]}" stopp "$pod" >/dev/null && "${CRICTL[@]}" rmp "$pod" >/dev/null || return

	# Restore into a new pod.
	local pod2 ctr2
	pod2=$("${CRICTL[@]}" runp $d/pod2.json) || return
	start=$SECONDS
	ctr2=$("${CRICTL[@]}" create "$pod2" $d/restore.json $d/pod2.json) || { fail "create from the archive failed"; return 1; }
	"${CRICTL[@]}" start "$ctr2" || { fail "start (restore) failed"; journalctl -u cri-runtime --no-pager | tail -20; return 1; }
	echo "  restored in $((SECONDS - start))s"
	[[ $("${CRICTL[@]}" inspect -o go-template --template '{{.status.state}}' "$ctr2") == CONTAINER_RUNNING ]] ||
		fail "the restored container is not running"
	cp_wait_count $d/logs2/counter.log $((after + 3)) || return
	local first
	first=$(awk '$2 == "stdout" && $4 ~ /^[0-9]+$/ {print $4; exit}' $d/logs2/counter.log)
	echo "  the restored container's first count: $first (checkpointed between $before and $after)"
	((first > before && first <= after + 1)) || fail "the restored container counted from $first, not on from $before..$after"
	[[ $("${CRICTL[@]}" exec "$ctr2" cat /tmp/made-here) == kept ]] || fail "/tmp/made-here did not survive"
	"${CRICTL[@]}" exec "$ctr2" test ! -e /etc/group || fail "/etc/group, deleted before the checkpoint, is back"
	"${CRICTL[@]}" exec "$ctr2" test -e /etc/passwd || fail "/etc/passwd of the image is missing"
	[[ $("${CRICTL[@]}" inspect -o go-template --template '{{.status.metadata.name}}' "$ctr2") == counter ]] || fail "the restored container's name"

	"${CRICTL[@]}" stopp "$pod2" >/dev/null && "${CRICTL[@]}" rmp "$pod2" >/dev/null
}

# checkpoint_pod: CheckpointPod and RestorePod, which crictl does not
# speak, and a restore from a checkpoint image: test/e2e's TestCheckpointPod
# and TestCheckpointImage (their binary built on the host by run.sh) run
# daemons of their own. The first checkpoints a pod of two counting
# containers, removes it, restores it, and checks both count on from the
# checkpoint with their file changes; the second makes a container's
# archive an OCI image (org.criu.checkpoint annotation), pushes and pulls
# it, and restores from it into a new pod. They must run, not skip.
checkpoint_pod() {
	local log=$OUT/checkpoint-pod.log
	(cd "$SRC/test/e2e" && CRI_RUNTIME_BINARY=$SRC/bin/cri-runtime \
		timeout 900 "$SRC/bin/vm/e2e.test" -test.run '^(TestCheckpointPod|TestCheckpointImage)$' -test.v -test.timeout 14m >"$log" 2>&1)
	local rc=$?
	grep -E "^\s*(--- |ok|FAIL|PASS)|checkpointed in|restored in|counts on from" "$log" | tail -30
	((rc == 0)) || { fail "TestCheckpointPod or TestCheckpointImage failed (exit $rc): $log"; return 1; }
	grep -q -- "--- PASS: TestCheckpointPod/round_trip" "$log" || fail "TestCheckpointPod did not run its round trip (CRIU not available to it?)"
	grep -q -- "--- PASS: TestCheckpointImage " "$log" || fail "TestCheckpointImage did not pass (skipped?)"
}

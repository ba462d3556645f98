# cri-runtime: build, run and test. `sudo make run` and `sudo make test` work
# on a fresh Debian 12 machine: both install what they need first.

GO      ?= go
TAGS    := containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper
BIN     := bin/cri-runtime
# Pod inits and exec subreapers (pkg/helper), found next to the daemon.
HELPER  := bin/cri-runtime-helper
# The test builds of the daemon, which the e2e tests run: with the crash
# points (pkg/crashpoint, the crashpoints tag; never in $(BIN)), and that
# with the race detector too, for the tests about concurrency (README, Testing).
TEST_BIN := bin/cri-runtime-test
RACE_BIN := bin/cri-runtime-race
TEST_TAGS := $(TAGS) crashpoints
# How many e2e tests run at once (those that call t.Parallel; README, Testing).
E2E_PARALLEL ?= 8
# cri-tools' validation suite and CLI, built from the versions hack/tools/go.mod pins.
CRITEST := bin/critest
CRICTL  := bin/crictl
# The kubelet the e2e tests drive (test/e2e/kubelet_test.go), pinned in
# hack/kubelet/go.mod. Building it takes minutes: it is built once and kept
# until that pin changes.
KUBELET := bin/kubelet
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/cri-runtime/cri-runtime/pkg/version.Version=$(VERSION)
# Extra flags for `make run`, e.g. make run ARGS="--log-level debug".
ARGS    ?=

.PHONY: all build build-test build-race kubelet deps run install test test-unit test-e2e test-kubelet test-vm critest critest-images tools churn soak bench bench-compare containerd lint clean

all: build

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cri-runtime
	$(GO) build -trimpath -ldflags "-s -w" -o $(HELPER) ./cmd/cri-runtime-helper

build-test:
	$(GO) build -tags "$(TEST_TAGS)" -ldflags "$(LDFLAGS)" -o $(TEST_BIN) ./cmd/cri-runtime

build-race:
	$(GO) build -race -tags "$(TEST_TAGS)" -ldflags "$(LDFLAGS)" -o $(RACE_BIN) ./cmd/cri-runtime

kubelet: $(KUBELET)

KUBELET_VERSION = $(shell sed -n 's/^\tk8s.io\/kubernetes v\([^ ]*\).*/\1/p' hack/kubelet/go.mod)
$(KUBELET): hack/kubelet/go.mod hack/kubelet/go.sum
	cd hack/kubelet && $(GO) build -trimpath -o $(abspath $(KUBELET)) \
	  -ldflags "-X k8s.io/component-base/version.gitVersion=v$(KUBELET_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBELET_VERSION)))" \
	  k8s.io/kubernetes/cmd/kubelet

deps:
	hack/install-deps.sh

# Serve the CRI in the foreground with the built-in defaults (needs root).
run: deps build
	exec $(BIN) $(ARGS)

# Install the daemon and its systemd unit (contrib/systemd); DESTDIR for
# packaging. Then: systemctl daemon-reload && systemctl enable --now cri-runtime
PREFIX     ?= /usr/local
UNITDIR    ?= $(PREFIX)/lib/systemd/system
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/cri-runtime
	install -D -m 0755 $(HELPER) $(DESTDIR)$(PREFIX)/bin/cri-runtime-helper
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/cri-runtime|$(PREFIX)/bin/cri-runtime|' contrib/systemd/cri-runtime.service \
	  > $(DESTDIR)$(UNITDIR)/cri-runtime.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/cri-runtime.service

# Everything CI runs: lint, unit tests under the race detector, the
# end-to-end tests against the real daemon, runc, conmon and CNI plugins,
# cri-tools' critest against the same, then the daemon as a systemd service
# in a VM with cgroup v2 (test-vm, about 10 minutes).
test: deps build lint test-unit test-e2e critest test-vm

# pkg/crashpoint runs twice: without the tag it must do nothing, with it,
# what the e2e tests rely on.
test-unit:
	$(GO) test -tags "$(TAGS)" -race -count=1 ./cmd/... ./pkg/... ./test/e2e/framework/...
	$(GO) test -tags "$(TEST_TAGS)" -race -count=1 ./pkg/crashpoint/

E2E_ENV = CRI_RUNTIME_BINARY=$(abspath $(BIN)) CRI_RUNTIME_TEST_BINARY=$(abspath $(TEST_BIN)) CRI_RUNTIME_RACE_BINARY=$(abspath $(RACE_BIN))

test-e2e: build build-test build-race kubelet
	$(E2E_ENV) KUBELET_BINARY=$(abspath $(KUBELET)) \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 40m -parallel $(E2E_PARALLEL) ./test/e2e/

# Only the tests that drive the daemon through a real kubelet.
test-kubelet: build build-test build-race kubelet
	$(E2E_ENV) KUBELET_BINARY=$(abspath $(KUBELET)) \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 20m -run '^TestKubelet' -v ./test/e2e/

# critest (cri-tools' CRI validation suite) and crictl, from their own module
# so that their dependencies never mix with the daemon's. Only the Go module
# proxy is needed; no cri-tools source is kept in this repository.
tools:
	cd hack/tools && $(GO) test -c -o $(abspath $(CRITEST)) sigs.k8s.io/cri-tools/cmd/critest
	cd hack/tools && $(GO) build -o $(abspath $(CRICTL)) sigs.k8s.io/cri-tools/cmd/crictl

# critest against the daemon on temporary directories, with every image it
# pulls built by test/critest and served from 127.0.0.1 (README, Testing).
# CRITEST_ARGS adds critest flags, e.g. CRITEST_ARGS=-ginkgo.focus=Networking.
critest: build tools
	CRI_RUNTIME_BINARY=$(abspath $(BIN)) CRITEST_BINARY=$(abspath $(CRITEST)) \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 20m -v ./test/critest/

# Serve critest's images until interrupted, and write bin/critest-registries.conf
# leading to them, for running bin/critest by hand (README, Testing).
critest-images:
	mkdir -p bin
	CRITEST_SERVE_IMAGES=$(abspath bin/critest-registries.conf) \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 24h -run '^TestServeCritestImages$$' -v ./test/critest/

# The full churn: 8 clients × 500 pod and container lifecycles against the
# race-detector build (test-e2e runs 20 per client).
churn: build build-test build-race
	$(E2E_ENV) CHURN_CYCLES=500 \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 3h -run '^TestChurn$$' -v ./test/e2e/

# The long variants of the fault tests (FAULT_ROUNDS rounds of each RPC race
# and streaming failure, test-e2e runs a few) and the churn (SOAK_CHURN_CYCLES
# per client); the churn, the races and the streaming failures run the
# race-detector build. README, Testing.
FAULT_ROUNDS      ?= 10
SOAK_CHURN_CYCLES ?= 100
soak: build build-test build-race
	$(E2E_ENV) FAULT_ROUNDS=$(FAULT_ROUNDS) CHURN_CYCLES=$(SOAK_CHURN_CYCLES) \
	  $(GO) test -tags "$(TAGS)" -count=1 -timeout 3h -v -parallel $(E2E_PARALLEL) \
	  -run '^(TestFullDisk|TestThrottledRegistry|TestFailedPullStallsNothing|TestStreamingClientFailures|TestExecWithUnreadStdinEndsWithItsClient|TestRPCRacePairs|TestRemovePodRacingCreateContainer|TestPanicInDaemonGoroutineIsRecovered|TestExecSyncOutputIsBoundedAcrossCalls|TestChurn)' \
	  ./test/e2e/

# Pod start/stop/remove medians; with CONTAINERD_CRI_SOCKET set, side by side
# with that containerd and reported as ratios (see README, Benchmarks).
bench: build build-test
	CRI_RUNTIME_BINARY=$(abspath $(BIN)) CRI_RUNTIME_TEST_BINARY=$(abspath $(TEST_BIN)) $(GO) test -tags "$(TAGS)" -run XXX -bench . -benchtime 40x -timeout 30m ./test/e2e/

# containerd and its runc shim at the version hack/bench/go.mod pins, for
# bench-compare only (built without the btrfs, devmapper and zfs snapshotters).
CONTAINERD      := bin/containerd
CONTAINERD_SHIM := bin/containerd-shim-runc-v2
containerd: $(CONTAINERD) $(CONTAINERD_SHIM)
$(CONTAINERD): hack/bench/go.mod hack/bench/go.sum
	cd hack/bench && $(GO) build -tags "no_btrfs no_devmapper no_zfs" -o $(abspath $@) github.com/containerd/containerd/v2/cmd/containerd
$(CONTAINERD_SHIM): hack/bench/go.mod hack/bench/go.sum
	cd hack/bench && CGO_ENABLED=0 $(GO) build -o $(abspath $@) github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2

# Our daemon and containerd side by side in one run (not in CI): critest
# -benchmark against each in turn (A B A B), ExecSync, per-pod memory and the
# relist load (the daemons' CPU time with RELIST_PODS pods relisted every
# second), as markdown tables of medians and ratios (README, Benchmarks). It
# holds /tmp/e2e.lock for the whole run: do not wrap it in flock yourself.
# BENCH_ROUNDS, BENCH_SAMPLES, BENCH_OUT (a file for the table), RELIST_PODS
# (0: no relist load), RELIST_SECONDS and BENCH_PROFILE (a directory for our
# daemon's CPU profiles and execution traces) tune it.
bench-compare: build tools containerd
	$(GO) test -tags "$(TAGS)" -c -o bin/critest-compare.test ./test/critest/
	cd test/critest && flock /tmp/e2e.lock env CRI_RUNTIME_BINARY=$(abspath $(BIN)) CRITEST_BINARY=$(abspath $(CRITEST)) \
	  CONTAINERD_BINARY=$(abspath $(CONTAINERD)) CONTAINERD_SHIM_BINARY=$(abspath $(CONTAINERD_SHIM)) \
	  $(abspath bin/critest-compare.test) -test.run '^TestCompareContainerd$$' -test.v -test.timeout 90m

# The daemon as a systemd service in a QEMU VM with cgroup v2 and AppArmor:
# `make install`, the shipped unit, restarts with containers running, critest
# (hack/vm/run.sh; VM_CHECKS, CGROUP_DRIVER, CRITEST_ARGS select).
test-vm: build tools
	hack/vm/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

clean:
	rm -rf bin

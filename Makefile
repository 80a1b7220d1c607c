# Berth: build, test, install.
GO          ?= go
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
DATADIR     ?= $(PREFIX)/share
CNICONFDIR  ?= $(SYSCONFDIR)/cni/net.d
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TAGS        := containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp netgo osusergo
LDFLAGS     := -s -w -X main.version=$(VERSION) -extldflags -static
# Every binary is static so it runs from any mount namespace (and berth-pause
# from inside a pod). cgo stays on for libseccomp in berth-runner.
GOBUILD     := CGO_ENABLED=1 $(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)"
BINARIES    := $(patsubst cmd/%,%,$(wildcard cmd/*))
# Packages whose tests need root and real kernels run one package at a time,
# so two suites do not fight over cgroups, iptables and CPU.
TESTFLAGS   ?= -count=1 -timeout 60m

.PHONY: all build test race unit-test e2e-test lint install install-contrib run clean $(BINARIES)

all: build

build: $(BINARIES)

$(BINARIES):
	$(GOBUILD) -o bin/$@ ./cmd/$@

# berth-monitor runs once per container, so its private memory is
# multiplied by the node's containers. Go's default Green Tea GC keeps mark
# bits inside each small-object span and touches a page of every one at
# allocation; the classic GC keeps them aside: 45-90 KiB less per monitor
# (README, "Monitor memory").
berth-monitor: export GOEXPERIMENT := nogreenteagc

test: lint build
	BERTH_TEST_BINDIR=$(CURDIR)/bin $(GO) test -tags "$(TAGS)" -p 1 $(TESTFLAGS) ./...
	$(MAKE) race

# race runs the race detector where concurrency lives: the daemon's
# packages in process, the concurrency tests of sandbox and storage, and
# end-to-end tests against a berthd built with -race (a race there kills
# it with exit code 66, which the tests see). Part of `make test`.
RACE_PKGS := ./atomicfile/ ./config/ ./errdefs/ ./ids/ ./record/ ./server/ ./oci/ ./monitor/ ./monitorclient/
RACE_E2E  := TestContainerLifecycle|TestContainerExecSync|TestContainerNamesAndBadRequests|TestHostileRequests|TestRunPodSandboxRetryWaitsForTheFirstCall
race: build
	$(GO) test -race -tags "$(TAGS)" -p 1 $(TESTFLAGS) $(RACE_PKGS)
	$(GO) test -race -tags "$(TAGS)" -p 1 $(TESTFLAGS) -run 'Concurrent|Cancelled' ./sandbox/ ./storage/
	CGO_ENABLED=1 $(GO) build -race -trimpath -tags "$(TAGS)" -o bin/race/berthd ./cmd/berthd
	cp bin/berth-monitor bin/berth-pause bin/berth-runner bin/berthctl bin/race/
	BERTH_TEST_BINDIR=$(CURDIR)/bin/race $(GO) test -tags "$(TAGS)" -p 1 $(TESTFLAGS) -run '$(RACE_E2E)' ./test/e2e/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

install: build install-contrib
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/berth $(DESTDIR)/lib/systemd/system
	install -m 0755 $(addprefix bin/,$(BINARIES)) $(DESTDIR)$(BINDIR)/
	install -m 0644 contrib/systemd/berthd.service $(DESTDIR)/lib/systemd/system/berthd.service
	test -e $(DESTDIR)$(SYSCONFDIR)/berth/berth.toml || install -m 0644 contrib/berth.toml $(DESTDIR)$(SYSCONFDIR)/berth/berth.toml

# The node's files, never overwritten: crictl.yaml when absent, the CNI
# bridge config only when the node has no CNI config at all; and berthctl's
# shell completion. No build needed, so tests can run it into a DESTDIR.
install-contrib:
	test -e $(DESTDIR)$(SYSCONFDIR)/crictl.yaml || install -D -m 0644 contrib/crictl.yaml $(DESTDIR)$(SYSCONFDIR)/crictl.yaml
	test -n "$$(find $(DESTDIR)$(CNICONFDIR) -maxdepth 1 \( -name '*.conflist' -o -name '*.conf' -o -name '*.json' \) 2>/dev/null)" || \
		install -D -m 0644 contrib/cni/10-berth-bridge.conflist $(DESTDIR)$(CNICONFDIR)/10-berth-bridge.conflist
	install -D -m 0644 contrib/completion/berthctl.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/berthctl
	install -D -m 0644 contrib/completion/_berthctl $(DESTDIR)$(DATADIR)/zsh/site-functions/_berthctl

# The first run ("Try it" in the README) on a machine with no CNI config
# gets berthd's built-in bridge, asked for here; a node's berthd (no flag,
# network.fallback_config = "none") waits for its own CNI config instead.
RUN_NETWORK_FALLBACK ?= builtin
run: build
	./bin/berthd -network-fallback "$(RUN_NETWORK_FALLBACK)"

clean:
	rm -rf bin

# Conformance: cri-tools' critest against a berthd of this tree, offline
# (test/critest). CRITEST_FOCUS / CRITEST_SKIP take a ginkgo regexp.
CRITEST_FLAGS ?=
CRITEST_FOCUS ?=
CRITEST_SKIP  ?=
CRITEST_RUN   := $(GO) run ./test/critest -bindir bin -build build/critest -cache build/cache \
	-focus '$(CRITEST_FOCUS)' -skip '$(CRITEST_SKIP)' $(CRITEST_FLAGS)

.PHONY: critest critest-bench
critest: build
	$(CRITEST_RUN)

critest-bench: build
	$(CRITEST_RUN) -bench

# Side by side with Debian's containerd 1.6 (apt-get install containerd)
# and, when a crio binary is there (CRIO, by default the one `make crio`
# built), CRI-O: pod lifecycles, memory, exec probes and stop/remove; a
# benchmark, never a test. Root needed.
BENCHFLAGS ?= -pods 20 -parallel 2 -running 10
CRIO ?= $(lastword $(sort $(wildcard $(CURDIR)/build/cache/crio-*/crio)))
.PHONY: bench
bench: build
	$(GO) run -tags "$(TAGS)" ./test/bench -bindir $(CURDIR)/bin -crio "$(CRIO)" $(BENCHFLAGS)

# The exec-probe and stop/remove scenarios alone (issue 25), a minute or
# two for the three runtimes.
.PHONY: bench-probes
bench-probes: build
	$(GO) run -tags "$(TAGS)" ./test/bench -bindir $(CURDIR)/bin -crio "$(CRIO)" -lifecycles=false -execs=false $(BENCHFLAGS_PROBES)

# A node's steady state (issue 25): 110 one-container pods, an exec probe
# each every 10 s, the server's and its helpers' CPU and memory over 10
# minutes, for each runtime in turn (about 12 minutes each).
# BENCHFLAGS_STEADY=-steady-short is a quick check (10 pods, 2 s, 30 s);
# -steady-pods, -steady-period, -steady-for, -steady-timeout shape it.
.PHONY: bench-steady
bench-steady: build
	$(GO) run -tags "$(TAGS)" ./test/bench -bindir $(CURDIR)/bin -crio "$(CRIO)" -lifecycles=false -execs=false -probes 0 -stops 0 -steady $(BENCHFLAGS_STEADY)

# CRI-O (crio and pinns) for the bench's third column, built from a CRI-O
# source tree into build/cache/crio-<version>/: CRIO_SRC is a checkout of
# github.com/cri-o/cri-o (git clone) or a bare git directory of one. Its
# vendored modules, Debian's libsqlite3 and libseccomp (apt-get install
# libsqlite3-dev libseccomp-dev conmon runc); rebuilt when the commit or
# contrib/crio/build-crio.sh changes. About 2 min cold on 2 cores.
.PHONY: crio
crio:
	@test -n "$(CRIO_SRC)" || { echo "make crio CRIO_SRC=<a cri-o checkout or git directory>" >&2; exit 2; }
	bash contrib/crio/build-crio.sh "$(CRIO_SRC)" build/cache

# berthd alone through 1,000 more lifecycles: its RSS before and after.
.PHONY: bench-soak
bench-soak: build
	$(GO) run -tags "$(TAGS)" ./test/bench -bindir $(CURDIR)/bin -containerd "" -pods 20 -parallel 2 -running 10 -soak 1000

# Kubernetes' node conformance suite (test/e2e_node of k8s.io/kubernetes,
# [NodeConformance] without Flaky/Slow/Serial/Disruptive/Feature/Alpha,
# and the kubelet's checkpoint API spec, [Feature:CheckpointContainer])
# against a berthd of this tree, offline, through a real apiserver and
# kubelet (test/node-e2e). The suite, its kubelet and busybox are built
# once into build/cache/node-e2e; berthd checkpoints with `make criu`'s
# CRIU (built first if it is not). NODE_E2E_FOCUS / NODE_E2E_SKIP take a
# ginkgo regexp, NODE_E2E_LABELS a ginkgo label filter (features are
# chosen by label: test/node-e2e/main.go); NODE_E2E_FLAGS more harness
# flags (-nodes, -debug).
NODE_E2E_FLAGS  ?=
NODE_E2E_FOCUS  ?=
NODE_E2E_SKIP   ?=
NODE_E2E_LABELS ?=
NODE_E2E_RUN    := criu=$$(bash contrib/criu/build-criu.sh build/cache) && \
	$(GO) run ./test/node-e2e -bindir bin -build build/node-e2e -cache build/cache/node-e2e -criu "$$criu" $(NODE_E2E_FLAGS)

.PHONY: node-e2e node-e2e-ci node-e2e-checkpoint node-e2e-build
# Only the Kubernetes binaries (the cold build: about 12 minutes of CPU),
# for .ci/run to make while other tests run.
node-e2e-build:
	bash test/node-e2e/build.sh build/cache/node-e2e

node-e2e: build
	$(NODE_E2E_RUN) -focus '$(NODE_E2E_FOCUS)' -skip '$(NODE_E2E_SKIP)' -labels '$(NODE_E2E_LABELS)'

# The part of the suite .ci/run runs: everything but the specs that wait by
# design (probes that wait for restarts or their absence, the containers'
# and sidecars' lifecycle sequences, in-place resize), which are most of the
# full run's wall time; see README, "Kubernetes node conformance". The
# checkpoint spec is in it (features stay out by the harness's default
# label filter).
NODE_E2E_CI_SKIP := \[Flaky\]|\[Slow\]|\[Serial\]|\[Disruptive\]|\[Alpha\]|Probing|Containers Lifecycle|Restartable Init Container|InPlace|Pod Level Resources
node-e2e-ci: build
	$(NODE_E2E_RUN) -skip '$(NODE_E2E_CI_SKIP)'

# The kubelet's checkpoint API alone (issue 22): the suite's
# [Feature:CheckpointContainer] spec, `POST /checkpoint/{ns}/{pod}/{ctr}`
# through the apiserver's node proxy to a kubelet on berthd, the archive
# checked; about 75 s, most of it the suite's start and the teardown.
node-e2e-checkpoint: build
	$(NODE_E2E_RUN) -nodes 1 -focus '\[Feature:CheckpointContainer\]' -skip '\[Serial\]|\[Disruptive\]'

# The VM lane (test/vm): a Debian 12 VM with systemd as init and cgroup v2
# only (QEMU; KVM when /dev/kvm is hardware KVM), its image built from
# Debian packages and cached under build/cache/vm. vm-test runs critest for
# the systemd driver with berth-runner, runc and crun and for cgroupfs with
# berth-runner, and a part of the e2e suite on both drivers with the three
# runtimes; vm-test-ci is the part .ci/run runs (critest with systemd and
# berth-runner, a smaller e2e part). VM_FLAGS go to `go run ./test/vm lane`
# (test/vm/lane.go). Root needed.
VM_FLAGS ?=
VM_RUN   := $(GO) run ./test/vm lane -bindir bin -cache build/cache
.PHONY: vm-test vm-test-ci vm-image
vm-image:
	$(GO) run ./test/vm image -cache build/cache

vm-test: build
	$(VM_RUN) $(VM_FLAGS)

vm-test-ci: build
	$(VM_RUN) -critest systemd/berth -e2e systemd -e2e-run ci -handlers berth,crun -timeout 60m $(VM_FLAGS)

# CRIU for checkpoint/restore (CheckpointContainer): 4.1.1 from the
# upstream tarball of Debian 13's source package, built once into
# build/cache/criu-4.1.1/criu (rebuilt when contrib/criu/build-criu.sh
# changes; about 75 s cold on 2 cores). Debian 12's criu 3.17 fails on
# recent kernels. berthd finds it through runtime.criu_path or PATH; the
# e2e tests through BERTH_TEST_CRIU or this path.
.PHONY: criu
criu:
	bash contrib/criu/build-criu.sh build/cache

# berthd and its helpers as they were at UPGRADE_FROM, the last commit
# before record versions, built from `git archive` into build/cache (about
# a minute): TestUpgradeInPlaceKeepsRunningPods (make test) upgrades a
# node in place from them when they are there (or BERTH_TEST_OLD_BINDIR).
UPGRADE_FROM := 485c30a
.PHONY: upgrade-from
upgrade-from:
	test -x build/cache/upgrade-$(UPGRADE_FROM)/bin/berthd || { \
		rm -rf build/cache/upgrade-$(UPGRADE_FROM) && \
		mkdir -p build/cache/upgrade-$(UPGRADE_FROM)/src && \
		git archive $(UPGRADE_FROM) | tar -x -C build/cache/upgrade-$(UPGRADE_FROM)/src && \
		$(MAKE) -C build/cache/upgrade-$(UPGRADE_FROM)/src build VERSION=$(UPGRADE_FROM) && \
		mv build/cache/upgrade-$(UPGRADE_FROM)/src/bin build/cache/upgrade-$(UPGRADE_FROM)/bin && \
		rm -rf build/cache/upgrade-$(UPGRADE_FROM)/src; }

# checkpointctl, the CRIU project's reader of checkpoint archives, built
# from its source through the Go module proxy into build/cache: the e2e
# checkpoint tests run `checkpointctl show` on Berth's archives when it is
# there. v1.6.0: v1.7.0 needs a go-criu release the proxy does not serve.
CHECKPOINTCTL_VERSION := v1.6.0
.PHONY: checkpointctl
checkpointctl:
	test -x build/cache/checkpointctl-$(CHECKPOINTCTL_VERSION)/checkpointctl || \
		GOBIN=$(CURDIR)/build/cache/checkpointctl-$(CHECKPOINTCTL_VERSION) GOFLAGS=-mod=mod \
		$(GO) install github.com/checkpoint-restore/checkpointctl@$(CHECKPOINTCTL_VERSION)

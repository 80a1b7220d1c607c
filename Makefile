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

.PHONY: all build test unit-test e2e-test lint install install-contrib run clean $(BINARIES)

all: build

build: $(BINARIES)

$(BINARIES):
	$(GOBUILD) -o bin/$@ ./cmd/$@

test: lint build
	BERTH_TEST_BINDIR=$(CURDIR)/bin $(GO) test -tags "$(TAGS)" -p 1 $(TESTFLAGS) ./...

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

run: build
	./bin/berthd

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

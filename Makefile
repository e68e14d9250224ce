# berth build, test and benchmark entry points. See README.md.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PREFIX ?= /usr/local
GO ?= go
BIN := bin
STATICCHECK_VERSION := v0.8.2
# berth-runtime and berth-shim are on every container's start path: link them
# statically (libseccomp included) so that no dynamic loader runs per exec.
# berthd needs cgo only for NSS lookups of users and hosts; without it, Go's own
# /etc/passwd, /etc/group and DNS code serve, and libc, libm and the NSS modules
# (1.6 MB of its RSS) are not mapped.
STATIC_LDFLAGS := -s -w -X main.version=$(VERSION) -extldflags "-static"
LDFLAGS := -X main.version=$(VERSION)
PROGRAMS := berth berthd berth-shim berth-runtime berth-init
TEST_TIMEOUT ?= 18m

.PHONY: all build deps install test lint unit bench demo man clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags "netgo osusergo" -ldflags '$(STATIC_LDFLAGS)' -o $(BIN)/berth-runtime ./cmd/berth-runtime
	CGO_ENABLED=1 $(GO) build -trimpath -tags "netgo osusergo" -ldflags '$(STATIC_LDFLAGS)' -o $(BIN)/berth-shim ./cmd/berth-shim
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN)/berth-init ./cmd/berth-init
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/berthd ./cmd/berthd
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/berth ./cmd/berth

# deps installs the Debian packages listed in scripts/debian-packages.txt that are missing.
deps:
	@scripts/install-deps.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(addprefix $(BIN)/,$(PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || test -x $$($(GO) env GOPATH)/bin/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH=$$PATH:$$($(GO) env GOPATH)/bin staticcheck ./...

# test runs everything: lint, then unit and root integration tests (they need root).
test: deps build lint
	BERTH_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 2 ./...

bench: deps build
	$(GO) run ./bench -runtime $(CURDIR)/$(BIN)/berth-runtime
	$(GO) run ./bench/images
	$(GO) run ./bench/engine -bin $(CURDIR)/$(BIN)
	$(GO) run ./bench/build -bin $(CURDIR)/$(BIN)

demo: deps build
	@scripts/demo.sh $(CURDIR)/$(BIN)/berth-runtime
	@scripts/demo-daemon.sh $(CURDIR)/$(BIN)

# man writes berth's man pages and shell completions into bin/.
man: build
	$(GO) run ./cmd/berth/genman -o $(CURDIR)/$(BIN)/man/man1
	@mkdir -p $(BIN)/completion
	$(BIN)/berth completion bash > $(BIN)/completion/berth.bash
	$(BIN)/berth completion zsh > $(BIN)/completion/_berth
	$(BIN)/berth completion fish > $(BIN)/completion/berth.fish

clean:
	rm -rf $(BIN)

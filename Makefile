# redraft: see README.md.
GO ?= go

.PHONY: all build test unit fuzz cluster torture bench budget vet run clean release docker

# Version stamped into the binary (internal/version). Override on the
# command line or in the environment, e.g. make release VERSION=v1.2.0.
VERSION := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null),dev)
COMMIT := $(or $(COMMIT),$(shell git rev-parse HEAD 2>/dev/null))
BUILD_DATE := $(or $(BUILD_DATE),$(shell date -u +%Y-%m-%dT%H:%M:%SZ))
VERSION_PKG := github.com/redraft/redraft/internal/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)
RELEASE_PLATFORMS := linux/amd64 linux/arm64

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o redraft .

# Static binaries (no cgo) for each platform in dist/, with SHA256SUMS.
release:
	rm -rf dist
	mkdir -p dist
	set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/redraft-$(VERSION)-$$os-$$arch; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out .; \
	done
	cd dist && sha256sum redraft-* > SHA256SUMS
	cat dist/SHA256SUMS

# Container image with Debian's redis-server (see Dockerfile).
docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
		--build-arg BUILD_DATE=$(BUILD_DATE) -t redraft:$(VERSION) .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt needed" && exit 1)

# Unit tests (with the race detector), then the cluster tests, which start the
# real binary and real redis-servers one package at a time.
test: vet
	$(GO) test -race -count=1 . ./internal/...
	$(MAKE) fuzz
	$(GO) test -count=1 -p 1 -timeout 20m ./tests/

# A short run of every fuzz target, seeds committed under testdata/fuzz.
# Each target runs a fixed number of inputs (about ten seconds each here)
# rather than a duration: Go 1.26's coordinator can fail a -fuzztime run
# with a bare "context deadline exceeded" when its workers are starved at
# the deadline (golang/go#75804, fixed in Go 1.27), which a count cannot hit.
# Longer: make fuzz FUZZTIME=10m (a duration or a count, for every target).
FUZZ_TARGETS := .:FuzzFrontEnd:3000x .:FuzzDecodeEntry:20000x .:FuzzSnapshotReader:30000x \
	./internal/resp:FuzzRequestReader:80000x ./internal/resp:FuzzReadReply:5000x \
	./internal/mux:FuzzMuxFirstBytes:15000x
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$${FUZZTIME:-$${rest#*:}}; \
		echo "fuzz $$name ($$pkg, $$budget)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | grep -v '^fuzz: elapsed'; \
	done

unit:
	$(GO) test -race -count=1 . ./internal/...

cluster:
	$(GO) test -count=1 -p 1 -timeout 20m -v ./tests/

# Long fault runs: the linearizability check under faults for 10 minutes and
# the crash-recovery loops 40 times. A failing run leaves porcupine's
# visualization, the history and the node logs under torture-out/.
torture:
	mkdir -p torture-out
	REDRAFT_LIN_DURATION=10m REDRAFT_CRASH_LOOPS=40 $(GO) test -count=1 -p 1 -timeout 90m -v \
		-run 'TestLinearizability|TestCrash' -artifacts -outputdir $(CURDIR)/torture-out ./tests/

bench: build
	./bench/run.sh

# budget: where the CPU and a write's time go (docs/DESIGN.md).
budget: build
	./bench/budget.sh ./redraft

run: build
	./redraft

clean:
	rm -rf redraft data data2 data3 dist torture-out

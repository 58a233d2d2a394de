# The test command of the README: `make test` installs what the tests need
# (PostgreSQL, Chromium, staticcheck) where missing, checks formatting, vets,
# lints, and runs every test, unit and integration.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: test deps check unit web-check fuzz-smoke bench demo

test: deps check web-check unit

deps:
	./scripts/install-test-deps.sh

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

web-check:
	./scripts/web-check.sh

# The packages with concurrency run a second time under the race detector;
# the long single-goroutine property tests that import
# internal/testutil/racerapid (the hotline's model) run fewer cases there.
RACE_PKGS := ./internal/service/... ./internal/api/... ./internal/alert/... \
	./internal/detect/... ./internal/store/... ./internal/hotline/... ./internal/replica/...

unit:
	$(GO) test -count=1 -timeout 30m ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

# Every fuzz target for 60 s on top of its seed corpus (the seed corpus
# alone already runs in `make unit`); about half an hour.
fuzz-smoke:
	./scripts/fuzz-smoke.sh 60s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

demo:
	$(GO) run ./cmd/deconflict demo

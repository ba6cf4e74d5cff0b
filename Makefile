# authapi: see README.md. Every target works on a fresh clone.
GO      ?= go
BIN     ?= bin/authapi
GOFLAGS ?=

.PHONY: all gen check-gen build run test lint bench

all: check-gen lint test build

## gen: regenerate gen/ (models, strict Echo server, client, embedded spec) from openapi.yaml
gen:
	$(GO) generate ./gen/

## check-gen: fail when gen/ does not match openapi.yaml
check-gen: gen
	@git diff --exit-code -- gen/ || { echo "gen/ is stale: run 'make gen' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ has untracked files: run 'make gen' and commit them"; exit 1; }

## build: build the authapi binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/authapi

## run: serve the API on SQLite (./authapi.db) at http://127.0.0.1:8000
run: build
	./$(BIN) serve

## test: the whole Go suite with the race detector (PostgreSQL too when AUTHAPI_TEST_POSTGRES_DSN is set)
test:
	$(GO) test -race -count=1 ./...

## lint: go vet, gofmt and staticcheck
lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck ./...

## bench: benchmarks (compare ratios within one run; machines here are shared)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

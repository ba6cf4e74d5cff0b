# authapi: see README.md. Every target works on a fresh clone.
GO      ?= go
BIN     ?= bin/authapi
GOFLAGS ?=

.PHONY: all gen check-gen build run test lint bench e2e load

all: check-gen lint test build

# Node packages for the TypeScript client, the spec lint and the end-to-end tests.
NODE_DEPS := node_modules/.package-lock.json
$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund

# The admin console's own packages (Svelte, Vite), pinned in admin/package-lock.json.
ADMIN_DEPS := admin/node_modules/.package-lock.json
$(ADMIN_DEPS): admin/package.json admin/package-lock.json
	cd admin && npm ci --no-audit --no-fund

## gen: regenerate gen/ (models, strict Echo server, Go and TypeScript clients, embedded spec) from openapi.yaml, and build the admin console into admin/dist/ with it
gen: $(NODE_DEPS) $(ADMIN_DEPS)
	$(GO) generate ./gen/
	npm run --silent gen
	cd admin && npm run --silent build

## check-gen: fail when gen/ does not match openapi.yaml or admin/dist/ does not match the console's source
check-gen: gen
	@git diff --exit-code -- gen/ admin/dist/ || { echo "gen/ or admin/dist/ is stale: run 'make gen' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/ admin/dist/)" || { git status --porcelain -- gen/ admin/dist/; echo "gen/ or admin/dist/ has untracked files: run 'make gen' and commit them"; exit 1; }

## build: build the authapi binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/authapi

## run: serve the API on SQLite (./authapi.db) at http://127.0.0.1:8000
run: build
	./$(BIN) serve

## test: the whole Go suite with the race detector (PostgreSQL too when AUTHAPI_TEST_POSTGRES_DSN is set)
test:
	$(GO) test -race -count=1 ./...

## lint: go vet, gofmt, staticcheck, the spec lint (Redocly, recommended rules) and the console's type and Svelte check
lint: $(NODE_DEPS) $(ADMIN_DEPS)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck ./...
	npm run --silent lint:spec
	cd admin && npm run --silent check

## e2e: the built binary end to end through the TypeScript client and jose, and Swagger UI and the admin console in Chromium
e2e: build $(NODE_DEPS)
	AUTHAPI_BIN=$(abspath $(BIN)) npm run --silent test:e2e

## bench: benchmarks (compare ratios within one run; machines here are shared)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## load: load benchmark: authapi serve (SQLite; PostgreSQL too when AUTHAPI_TEST_POSTGRES_DSN is set) against a bare Echo handler, on 127.0.0.1; LOAD_FLAGS="-duration 10s -rounds 3 -scenarios welcome,login"
load: build
	$(GO) build -o bin/authapi-load ./cmd/authapi-load
	./bin/authapi-load -bin $(BIN) $(LOAD_FLAGS)

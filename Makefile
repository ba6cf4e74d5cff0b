# authapi: see README.md. Every target works on a fresh clone.
GO      ?= go
BIN     ?= bin/authapi
GOFLAGS ?=

.PHONY: all gen check-gen build run test test-short lint bench fuzz e2e load

all: check-gen lint test build

# Node packages for the spec lint, the end-to-end tests and the workspaces: the TypeScript
# client (gen/ts), the admin console (admin/, which depends on it) and the resource servers'
# verifier (verifier/node), pinned in package-lock.json.
NODE_DEPS := node_modules/.package-lock.json
$(NODE_DEPS): package.json gen/ts/package.json admin/package.json verifier/node/package.json package-lock.json
	npm ci --no-audit --no-fund

## gen: regenerate gen/ (the strict Echo server; gen/client the Go models and client it and consumers share; gen/ts the TypeScript client) from openapi.yaml, build the admin console into admin/dist/ with it, and the Node verifier into verifier/node/dist/
gen: $(NODE_DEPS)
	$(GO) generate ./gen/...
	npm run --silent gen
	cd admin && npm run --silent build
	npm run --silent build:verifier

## check-gen: fail when gen/ does not match openapi.yaml, or admin/dist/ or verifier/node/dist/ does not match its source
check-gen: gen
	@git diff --exit-code -- gen/ admin/dist/ verifier/node/dist/ || { echo "gen/, admin/dist/ or verifier/node/dist/ is stale: run 'make gen' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/ admin/dist/ verifier/node/dist/)" || { git status --porcelain -- gen/ admin/dist/ verifier/node/dist/; echo "gen/, admin/dist/ or verifier/node/dist/ has untracked files: run 'make gen' and commit them"; exit 1; }

## build: build the authapi binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/authapi

## run: serve the API on SQLite (./authapi.db) at http://127.0.0.1:8000
run: build
	./$(BIN) serve

## test: the whole Go suite with the race detector (PostgreSQL too when AUTHAPI_TEST_POSTGRES_DSN is set; the fleet test then runs the Node verifier, hence the Node packages)
test: $(NODE_DEPS)
	$(GO) test -race -count=1 ./...

## test-short: the edit loop: the Go suite without the race detector, skipping the long tests
test-short:
	$(GO) test -short ./...

## lint: go vet, gofmt, staticcheck, the spec lint (Redocly, recommended rules) and the console's type and Svelte check
lint: $(NODE_DEPS)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck ./...
	npm run --silent lint:spec
	cd admin && npm run --silent check

# The mail server of the end-to-end tests, run on loopback: mailpit at the version tools.go pins
# in go.mod, built from the module proxy like any dependency (nothing is downloaded at run
# time). Defined before the rules that name it: make expands prerequisites as it reads them.
MAILPIT ?= bin/mailpit

## e2e: the built binary end to end through the TypeScript client and jose, and Swagger UI and the admin console in Chromium, password reset through mailpit; the Node verifier's tests (@authapi/verifier)
e2e: build $(MAILPIT) $(NODE_DEPS)
	npm run --silent build:verifier
	npm run --silent test:verifier
	AUTHAPI_BIN=$(abspath $(BIN)) AUTHAPI_MAILPIT_BIN=$(abspath $(MAILPIT)) npm run --silent test:e2e

$(MAILPIT): go.mod go.sum
	$(GO) build -o $@ github.com/axllent/mailpit

## bench: benchmarks (compare ratios within one run; machines here are shared)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## fuzz: a bounded run of every fuzz target, by count rather than time (Go reports its own
## time-out of a slow time-limited run as a failure): the token verifier and request decoding
## of every operation, never a panic, never a 5xx. A target fails only by finding an input,
## which it writes under testdata/fuzz/; every target runs, and all failures are reported.
## FUZZ_SCALE multiplies the counts. The anchors keep FuzzParse from matching FuzzParseSigned.
FUZZ_SCALE   ?= 1
FUZZ_TARGETS := ./internal/token/:FuzzParse:50000 ./internal/token/:FuzzParseSigned:20000 \
                ./internal/server/:FuzzRequestBodies:5000 ./internal/server/:FuzzAuthorizationHeader:5000
fuzz:
	@failed=""; for target in $(FUZZ_TARGETS); do \
	  pkg=$${target%%:*}; rest=$${target#*:}; name=$${rest%%:*}; count=$${rest#*:}; \
	  $(GO) test -run='^$$' -fuzz="^$${name}\$$" -fuzztime="$$((count * $(FUZZ_SCALE)))x" "$$pkg" || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzzing found failing inputs in:$$failed (see testdata/fuzz/ in their packages)" >&2; \
	  git status --short -- '*/testdata/fuzz/'; exit 1; \
	fi

## load: load benchmark: authapi serve (SQLite; PostgreSQL too when AUTHAPI_TEST_POSTGRES_DSN is set) against a bare Echo handler, on 127.0.0.1; LOAD_FLAGS="-duration 10s -rounds 3 -scenarios welcome,login"
load: build
	$(GO) build -o bin/authapi-load ./cmd/authapi-load
	./bin/authapi-load -bin $(BIN) $(LOAD_FLAGS)

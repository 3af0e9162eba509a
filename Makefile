# ztlog — see README.md. `make run` starts the embedded default; `make test`
# runs every test, including the ones that start and kill real processes.

GO        ?= go
BIN       := bin
DEV_DIR   ?= .ztlog-dev
FUZZTIME  ?= 10s
BENCHTIME ?= 1x
PKGS      := ./...

.PHONY: all build run test bench fuzz lint deps clean daal-contract

all: build

## build: compile every binary into ./bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

## run: build and start `ztlog dev`, the embedded default, under $(DEV_DIR)
run: build
	./$(BIN)/ztlog dev --data-dir $(DEV_DIR)

## deps: install the tools some tests need when they are missing (.ci/deps.d)
deps:
	@for s in .ci/deps.d/*.sh; do [ -e "$$s" ] || continue; echo "deps: $$s"; bash "$$s" || echo "deps: $$s could not install; tests needing it will skip"; done

## test: lint, then every Go test with the race detector, then the Python and TypeScript SDKs' suites
test: deps lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory test-sdk-python
	$(MAKE) --no-print-directory test-sdk-typescript

## bench: the benchmarks, each a comparison against a baseline in the same run
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m $(PKGS)

## fuzz: a short pass ($(FUZZTIME)) over every fuzz target
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			echo "fuzz $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## daal-contract: recompile log/anchor/daal/daalog/DAALog.sol with the pinned solc (npm) and rewrite DAALog.json and verifier/daal/DAALog.abi.json
daal-contract:
	cd log/anchor/daal/daalog && $(GO) run gen_artifact.go

clean:
	rm -rf $(BIN)

## test-sdk-python: the Python SDK (contract/sdk/python) on the shared SDK vectors and a real `ztlog dev`
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
.PHONY: test-sdk-python
test-sdk-python:
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then echo "test-sdk-python: SKIP: python3 is not installed (.ci/deps.d/python.sh)"; exit 0; fi; \
	for m in pytest:python3-pytest cryptography:python3-cryptography; do \
		if ! $(PYTHON) -c "import $${m%%:*}" 2>/dev/null; then echo "test-sdk-python: SKIP: $${m#*:} is not installed for $(PYTHON) (.ci/deps.d/python.sh)"; exit 0; fi; \
	done; \
	tmp=$$(mktemp -d) && $(GO) build -o $$tmp/ztlog ./cmd/ztlog && \
	ZTLOG_BIN=$$tmp/ztlog $(PYTHON) -B -m pytest -q -p no:cacheprovider contract/sdk/python/tests; rc=$$?; rm -rf $$tmp; exit $$rc

.PHONY: test-sdk-typescript

## test-sdk-typescript: the TypeScript SDK (contract/sdk/typescript): npm ci, tsc, node --test against the shared vectors and a real ztlog dev
test-sdk-typescript:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "test-sdk-typescript: skipped: node and npm are not installed (.ci/deps.d/nodejs.sh installs them)"; exit 0; fi; \
	if [ "$$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then \
		echo "test-sdk-typescript: skipped: node $$(node --version) is older than 20"; exit 0; fi; \
	set -e; mkdir -p $(BIN); $(GO) build -o $(BIN)/ztlog ./cmd/ztlog; \
	cd contract/sdk/typescript && npm ci --no-audit --no-fund && ZTLOG_BIN=$(CURDIR)/$(BIN)/ztlog npm test

# --- container image (issue 17; README "Deploying: containers, Kubernetes, systemd") ---
IMAGE        ?= localhost/ztlog
IMAGE_TAG    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
REVISION     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PODMAN       ?= podman --runtime runc --cgroup-manager=cgroupfs
IMAGE_CTX    ?= $(BIN)/image
VERSION_PKG  := github.com/zt-infra/ztlog/internal/version

.PHONY: image image-context

## image-context: static binaries, CA certificates, passwd/group into $(IMAGE_CTX)/ (the build context)
image-context:
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/rootfs/tmp $(IMAGE_CTX)/data
	chmod 1777 $(IMAGE_CTX)/rootfs/tmp
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto \
		-ldflags "-s -w -X $(VERSION_PKG).Version=$(IMAGE_TAG) -X $(VERSION_PKG).Revision=$(REVISION)" \
		-o $(IMAGE_CTX)/ ./cmd/ztlog ./cmd/zt ./cmd/zt-audit ./cmd/zt-witness ./cmd/zt-replay
	@[ -s /etc/ssl/certs/ca-certificates.crt ] || { echo "image: /etc/ssl/certs/ca-certificates.crt missing (Debian: apt-get install ca-certificates)"; exit 1; }
	cp /etc/ssl/certs/ca-certificates.crt deploy/image/passwd deploy/image/group $(IMAGE_CTX)/

## image: build $(IMAGE):$(IMAGE_TAG) FROM scratch with podman (Containerfile)
image: image-context
	$(PODMAN) build --layers=false --file Containerfile --build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$(REVISION) \
		--tag $(IMAGE):$(IMAGE_TAG) $(IMAGE_CTX)
	@echo "image: $(IMAGE):$(IMAGE_TAG)"

## fuzz-long: every fuzz target for $(FUZZTIME_LONG) each (default 5m); goes on past a
## failing target, writes each target's output under $(FUZZ_LONG_DIR) and prints, per
## target, its last execs line and whether it failed (a failure's input is in testdata/fuzz)
FUZZTIME_LONG ?= 5m
FUZZ_LONG_DIR ?= bin/fuzz-long
## FUZZ_PARALLEL=N runs N fuzz workers per target (default: GOMAXPROCS), so a long
## run can leave cores to other work.
FUZZ_PARALLEL ?=
.PHONY: fuzz-long
fuzz-long:
	@mkdir -p $(FUZZ_LONG_DIR); failed=0; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			out=$(FUZZ_LONG_DIR)/$$(echo $$pkg | sed 's|^[./]*||' | tr / _)_$$t.log; \
			if $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME_LONG) $(if $(FUZZ_PARALLEL),-parallel $(FUZZ_PARALLEL)) $$pkg > $$out 2>&1; then res=ok; else res=FAIL; failed=$$((failed+1)); fi; \
			echo "fuzz-long $$res $$pkg $$t: $$(grep -o 'execs: [0-9]*' $$out | tail -1)"; \
		done; \
	done; \
	echo "fuzz-long: $$failed target(s) failed; logs in $(FUZZ_LONG_DIR)"; \
	[ $$failed -eq 0 ]

## bench-report: run issue 20's benchmarks (decisions at 64/256/1,024 clients beside bare
## Tessera, latency at 2,000/s $(BENCH_RUNS) times, log append p99 beside a lone append, audit
## beside raw ECDSA, the MCP gateway's added latency) and write docs/bench-report.md: every
## figure beside its same-run baseline, pass/fail per target, the load average, and CPU per
## decision by part from a profile. QUICK=1: a smoke run. Raw outputs: $(BIN)/bench-report.
BENCH_RUNS ?= 5
.PHONY: bench-report
bench-report:
	$(GO) run ./internal/benchreport -out docs/bench-report.md -dir $(BIN)/bench-report -runs $(if $(filter 1,$(QUICK)),1,$(BENCH_RUNS)) $(if $(filter 1,$(QUICK)),-quick)

## screenshots: the evidence explorer's main pages as docs/explorer/*.png, taken by its
## browser test (Debian chromium, .ci/deps.d/chromium.sh) against a fresh ztlog dev
.PHONY: screenshots
screenshots:
	$(GO) test -count=1 -run '^TestExplorerInBrowser$$' ./verifier/explorer -screenshots $(CURDIR)/docs/explorer

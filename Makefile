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

## test: lint, then every test with the race detector
test: deps lint
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

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

## daal-contract: recompile witness/daal/daalog/DAALog.sol with the pinned solc (npm) and rewrite DAALog.json
daal-contract:
	cd witness/daal/daalog && $(GO) run gen_artifact.go

clean:
	rm -rf $(BIN)

## fuzz-long: every fuzz target for $(FUZZTIME_LONG) each (default 5m); goes on past a
## failing target, writes each target's output under $(FUZZ_LONG_DIR) and prints, per
## target, its last execs line and whether it failed (a failure's input is in testdata/fuzz)
FUZZTIME_LONG ?= 5m
FUZZ_LONG_DIR ?= bin/fuzz-long
.PHONY: fuzz-long
fuzz-long:
	@mkdir -p $(FUZZ_LONG_DIR); failed=0; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			out=$(FUZZ_LONG_DIR)/$$(echo $$pkg | sed 's|^[./]*||' | tr / _)_$$t.log; \
			if $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME_LONG) $$pkg > $$out 2>&1; then res=ok; else res=FAIL; failed=$$((failed+1)); fi; \
			echo "fuzz-long $$res $$pkg $$t: $$(grep -o 'execs: [0-9]*' $$out | tail -1)"; \
		done; \
	done; \
	echo "fuzz-long: $$failed target(s) failed; logs in $(FUZZ_LONG_DIR)"; \
	[ $$failed -eq 0 ]

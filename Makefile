# kmemu — make targets. `make demo` and `make test` each work as the first command on a fresh
# machine with Node 20: they install the locked dependencies themselves.

NPM_STAMP := node_modules/.kmemu-installed
BUILD_STAMP := dist/.kmemu-built
SOURCES := $(shell find emu kernel traces tools -name '*.ts' 2>/dev/null)

.PHONY: all install build demo test check typecheck lint bench fuzz clean

all: build

install: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: $(BUILD_STAMP)

$(BUILD_STAMP): $(NPM_STAMP) $(SOURCES) tsconfig.json tsconfig.build.json
	npx tsc -p tsconfig.build.json
	@chmod +x dist/tools/cli.js
	@touch $@

# The main job on a bundled example: a real Linux kmem tracepoint capture (converted to the
# kmemu format) replayed through the kernel's zone allocator with per-CPU caching on and off,
# on this host's 2-CPU machine and on an 8-CPU one, showing where the cycles go.
DEMO_TRACE := traces/examples/linux-6.18-kmem.trace.gz
demo: build
	@echo "== kmemu compare: the Linux 6.18 capture on amd64-host, 2 CPUs =="
	node dist/tools/cli.js compare $(DEMO_TRACE) --machine amd64-host --cpus 2
	@echo
	@echo "== the same capture on an 8-CPU amd64-host (the capture has 2 CPUs: 6 stay idle) =="
	node dist/tools/cli.js compare $(DEMO_TRACE) --machine amd64-host --cpus 8
	@echo
	@echo "== the capture's cache and size mix, generated for 8 CPUs, on the 8-CPU machine =="
	node dist/tools/cli.js trace gen kernel-mix --cpus 8 --events 40000 --seed 1 -o dist/demo-kernel-mix-8cpu.trace.gz
	node dist/tools/cli.js compare dist/demo-kernel-mix-8cpu.trace.gz --machine amd64-host --cpus 8
	@echo
	@echo "== the same 8-CPU mix on FreeBSD's UMA (per-CPU buckets and the bucket depot) =="
	node dist/tools/cli.js compare dist/demo-kernel-mix-8cpu.trace.gz --machine amd64-host --cpus 8 --allocator uma

test: $(NPM_STAMP)
	npx vitest run

typecheck: $(NPM_STAMP)
	npx tsc -p tsconfig.json --noEmit

lint: $(NPM_STAMP)
	npx eslint .

check: typecheck lint test

bench: build
	node dist/tools/bench/run.js

# Seeded mutations of each reader's seed corpus (tools/fuzz/); findings are saved to fuzz-findings/.
RUNS ?= 3000
SEED ?= 1
fuzz: build
	node dist/tools/fuzz/run.js --target all --runs $(RUNS) --seed $(SEED) --out fuzz-findings

clean:
	rm -rf dist

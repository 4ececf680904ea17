# kmemu — make targets. `make demo` and `make test` each work as the first command on a fresh
# machine with Node 20: they install the locked dependencies themselves.

NPM_STAMP := node_modules/.kmemu-installed
BUILD_STAMP := dist/.kmemu-built
SOURCES := $(shell find emu kernel traces tools -name '*.ts' 2>/dev/null)

.PHONY: all install build demo test check typecheck lint bench clean

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

# The main job on a bundled example: the references the machine made running a free-list
# allocator, through this host's L1D/L2 (Dinero-compatible) and through tiny coursework caches.
DEMO_TRACE := traces/examples/kernel-walk.din.gz
demo: build
	@echo "== kmemu cachesim: amd64-host L1D + L2, Dinero IV-compatible =="
	node dist/tools/cli.js cachesim --format din --l1 48k:12:64:lru --l2 1m:16:64:lru --non-inclusive $(DEMO_TRACE)
	@echo
	@echo "== the same references through coursework-sized inclusive caches and a 16-entry TLB =="
	node dist/tools/cli.js cachesim --format din --l1 1k:2:64:lru --l2 4k:4:64:lru --l3 16k:8:64:lru --tlb 16:4 $(DEMO_TRACE)

test: $(NPM_STAMP)
	npx vitest run

typecheck: $(NPM_STAMP)
	npx tsc -p tsconfig.json --noEmit

lint: $(NPM_STAMP)
	npx eslint .

check: typecheck lint test

bench: build
	node dist/tools/bench/run.js

clean:
	rm -rf dist

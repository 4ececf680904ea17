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

# The main job on a bundled example.
demo: build
	node dist/tools/cli.js cachesim --format din --l1 32k:8:64:lru --l2 1m:16:64:lru --non-inclusive traces/examples/kernel-walk.din.gz

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

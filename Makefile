# kmemu — make targets. `make demo` and `make test` each work as the first command on a fresh
# machine with Node 20: they install the locked dependencies themselves.

NPM_STAMP := node_modules/.kmemu-installed
BUILD_STAMP := dist/.kmemu-built
SOURCES := $(shell find emu kernel traces tools \( -name '*.ts' -o -name '*.tsx' -o -name '*.css' \) 2>/dev/null)
VIEW_STAMP := dist/view/.kmemu-built
VIEW_SOURCES := $(shell find tools/view/app -type f 2>/dev/null) tools/view/state.ts tools/explain.ts

.PHONY: all install build demo sweep-demo test test-slurm slurm-deps browser-deps check typecheck lint bench bench-commands bench-deps fuzz clean schemas system-deps

all: build

install: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: $(BUILD_STAMP) $(VIEW_STAMP)

$(BUILD_STAMP): $(NPM_STAMP) $(SOURCES) index.ts tsconfig.json tsconfig.build.json
	npx tsc -p tsconfig.build.json
	@chmod +x dist/tools/cli.js
	@touch $@

# kmemu view's page (tools/view/app/, Preact and vega-lite) bundled by esbuild into dist/view/.
$(VIEW_STAMP): $(BUILD_STAMP) $(VIEW_SOURCES)
	node dist/tools/view/build-app.js dist/view
	@touch $@

# The main job on bundled examples. First the mechanism: contended alloc/free pairs on 4 CPUs,
# per-CPU caching on and off, on DragonFly's vm_zone and on FreeBSD's UMA (the legend of the
# columns and path labels is printed once, under the first). Then a real Linux kmem capture
# replayed on this host's 2-CPU machine, and its cache and size mix generated for 8 CPUs: each
# comparison ends with the tool's own account of why it came out as it did.
DEMO_TRACE := traces/examples/linux-6.18-kmem.trace.gz
KMEMU := node dist/tools/cli.js
demo: build
	@echo "== 1. the mechanism: alloc/free pairs on 4 CPUs of amd64-host, vm_zone =="
	@$(KMEMU) trace gen pairs --cpus 4 --events 40000 --seed 1 -o dist/demo-pairs-4cpu.trace.gz >/dev/null
	$(KMEMU) compare dist/demo-pairs-4cpu.trace.gz --machine amd64-host --cpus 4 --allocator vmzone
	@echo
	@echo "== 1b. the same pairs with each CPU's vm_zone state on cache lines of its own (--aligned) =="
	$(KMEMU) compare dist/demo-pairs-4cpu.trace.gz --machine amd64-host --cpus 4 --allocator vmzone --aligned --no-legend
	@echo
	@echo "== 2. the same pairs on FreeBSD's UMA (per-CPU buckets and the bucket depot) =="
	$(KMEMU) compare dist/demo-pairs-4cpu.trace.gz --machine amd64-host --cpus 4 --allocator uma --no-legend
	@echo
	@echo "== 3. a real Linux 6.18 kmem capture (2 CPUs) on amd64-host, vm_zone =="
	$(KMEMU) compare $(DEMO_TRACE) --machine amd64-host --cpus 2 --no-legend
	@echo
	@echo "== 4. the capture's cache and size mix generated for 8 CPUs, on vm_zone and on UMA =="
	@$(KMEMU) trace gen kernel-mix --cpus 8 --events 40000 --seed 1 -o dist/demo-kernel-mix-8cpu.trace.gz >/dev/null
	$(KMEMU) compare dist/demo-kernel-mix-8cpu.trace.gz --machine amd64-host --cpus 8 --allocator vmzone --no-legend
	@echo
	$(KMEMU) compare dist/demo-kernel-mix-8cpu.trace.gz --machine amd64-host --cpus 8 --allocator uma --no-legend

# The bundled what-if sweep of Bonwick & Adams 2001's Figure 3.8 (examples/sweeps/): 40 points,
# alloc/free pairs on 1-16 CPUs of xeon-8180, per-CPU caching on and off, both per-CPU layouts,
# vm_zone and UMA, on a worker per core; then its table and where its charts are. Rerunning it
# runs nothing (every point is complete in dist/sweep-demo).
SWEEP_DEMO := dist/sweep-demo
sweep-demo: build
	$(KMEMU) sweep examples/sweeps/bonwick-fig-3.8.json --out $(SWEEP_DEMO)
	@$(KMEMU) sweep table $(SWEEP_DEMO) --metrics cycles_per_op,throughput_ops_per_mcycle,c2c_per_op,speedup
	@echo "charts: $$(ls $(SWEEP_DEMO)/charts/*.svg | tr '\n' ' ')"

# The JSON Schemas of the --json documents, generated from their zod schemas; commit the result
# (test/tools/schemas.test.ts fails when docs/schemas/ differs from what this writes).
schemas: build
	node dist/tools/schemas.js docs/schemas

# Debian packages the tests need: the importer's tests decompress xz, zstd and bzip2 captures with
# the real commands; calibrate --host builds its C benchmarks with cc; the benchmarks' own tests
# run GNU time. Installed with apt-get when one is missing (we run as root on CI).
SYSTEM_TOOLS := xz:xz-utils zstd:zstd bzip2:bzip2 cc:gcc /usr/bin/time:time
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing$$missing with apt-get (the tests need them)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: build system-deps browser-deps
	npx vitest run

# Debian's Chromium for the viewer's browser test (test/view/viewer.test.ts), installed with
# apt-get when /usr/bin/chromium is missing and we are root; otherwise nothing (the test then says
# loudly that it skips).
browser-deps:
	@if [ -x /usr/bin/chromium ] || [ -n "$$CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing chromium with apt-get (the viewer's browser test needs it)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	fi

# The tests on a real single-node Slurm (test/slurm/): they install slurm-wlm and munge with
# apt-get when missing, start munged, slurmctld and slurmd from a temp dir and stop them by PID.
# Where that cannot be done (not root, no apt-get) they are skipped with a banner saying why.
test-slurm: install slurm-deps
	npx vitest run --config vitest.slurm.config.ts

# Debian's Slurm and munge for test-slurm, installed with apt-get when slurmctld is missing and we
# are root; otherwise nothing (the tests then say loudly that they skip).
slurm-deps:
	@if ! command -v slurmctld >/dev/null 2>&1 && [ -x /usr/sbin/slurmctld ]; then :; \
	elif ! command -v slurmctld >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing slurm-wlm and munge with apt-get (make test-slurm needs them)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }; \
	fi

typecheck: $(NPM_STAMP)
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p tools/view/app/tsconfig.json

lint: $(NPM_STAMP)
	npx eslint .

check: typecheck lint test

# The benchmarks (tools/bench/): the in-process suites, then whole commands against kmemu's goals
# and beside Dinero IV when DINEROIV names its binary (`make bench-commands`: those alone).
bench: build bench-deps
	node dist/tools/bench/run.js

bench-commands: build bench-deps
	node dist/tools/bench/run.js commands

# GNU time (/usr/bin/time, Debian's package time), which gives the whole-command benchmarks each
# child's CPU time and peak RSS; installed with apt-get when missing (we run as root on CI).
bench-deps:
	@if [ ! -x /usr/bin/time ]; then \
	  echo "make: installing time with apt-get (make bench measures commands with /usr/bin/time)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; \
	fi

# Seeded mutations of each reader's seed corpus (tools/fuzz/); findings are saved to fuzz-findings/.
RUNS ?= 3000
SEED ?= 1
fuzz: build
	node dist/tools/fuzz/run.js --target all --runs $(RUNS) --seed $(SEED) --out fuzz-findings

clean:
	rm -rf dist

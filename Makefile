# Every target installs and builds what it needs first.
PORT ?= 9000
ARGS ?=
# QUICK=1: the short form of bench-c10k (about a minute), bench-c100k (20,000 clients) and bench-broadcast.
QUICK ?=
# make cluster: WORKERS server processes on PORT, bridged by REDIS (REDIS= and ARGS="--redis-cluster h:p" for a cluster).
WORKERS ?= 2
REDIS ?= redis://127.0.0.1:6379
QUICK_FLAG = $(if $(QUICK),--quick,)
# make demo-life: SIZE x SIZE cells; GENERATIONS (0 = live until Ctrl-C); CHECK=1 runs headless and checks the grid.
SIZE ?= 32
GENERATIONS ?= 0
CHECK ?=
NODE ?= node
TEST_FLAGS ?= --test-timeout=60000

.PHONY: install build server cluster example baseline swarm test test-node-lines bench-micro bench-c10k bench-c100k bench-c1m bench-slow bench-slow-consumers bench-broadcast bench-http bench-redis bench-recovery bench-swarm bench-vs-artillery report demo-life demo-comments screenshots fuzz soak clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

# tsc runs only when a source, tsconfig.json or the installed packages changed since the last build,
# and then into an empty dist/: the output of a removed source (a test above all) must not linger.
SOURCES := $(shell find bin server clients bench test examples -name '*.ts' 2>/dev/null) tsconfig.json
dist/.built: node_modules/.package-lock.json $(SOURCES)
	rm -rf dist
	npx tsc -p tsconfig.json
	@touch $@

build: dist/.built

server: build
	$(NODE) dist/server/cli.js --port $(PORT) $(ARGS)

cluster: build
	$(NODE) dist/server/cli.js --port $(PORT) --workers $(WORKERS) $(if $(REDIS),--redis $(REDIS),) $(ARGS)

# EX names a file of examples/ (simplest, push-trap, authenticator, on-open, receiver, presence, pg-monitor,
# data-binding, jwt); it listens on PORT.
EX ?= simplest
example: build
	PORT=$(PORT) $(NODE) dist/examples/$(EX).js

baseline: build
	$(NODE) dist/server/baseline/cli.js --port $(PORT) $(ARGS)

# A bare `make swarm` is a short run against the server on PORT (1,000 clients, about 15 s); ARGS replaces it.
SWARM_DEFAULT = --url ws://127.0.0.1:$(PORT) --clients 1000 --ramp 5 --delay 2
swarm: build
	$(NODE) dist/clients/cli.js $(if $(ARGS),$(ARGS),$(SWARM_DEFAULT))

test: build
	$(NODE) --test $(TEST_FLAGS) dist/test/*.test.js

# Node 22 and 24: refused on this host's glibc, native uWS 20.57 in a Debian 13 root (root, debootstrap).
test-node-lines: build
	bash .ci/node-lines

bench-micro: build
	$(NODE) dist/bench/micro-codec.js

bench-c10k: build
	$(NODE) dist/bench/c10k.js $(QUICK_FLAG) $(ARGS)

bench-c100k: build
	$(NODE) dist/bench/c100k.js $(QUICK_FLAG) $(ARGS)

bench-c1m: build
	$(NODE) dist/bench/c1m.js $(if $(CLIENTS),--clients $(CLIENTS),) $(ARGS)

bench-slow: build
	$(NODE) dist/bench/slow.js $(ARGS)

bench-slow-consumers: build
	$(NODE) dist/bench/slow-consumers.js $(ARGS)

bench-broadcast: build
	$(NODE) dist/bench/broadcast.js $(QUICK_FLAG) $(ARGS)

bench-http: build
	$(NODE) dist/bench/http.js $(ARGS)

bench-redis: build
	$(NODE) dist/bench/redis.js $(ARGS)

bench-recovery: build
	$(NODE) dist/bench/recovery.js $(ARGS)

bench-floods: build
	$(NODE) dist/bench/floods.js $(ARGS)

bench-swarm: build
	$(NODE) dist/bench/swarm.js $(ARGS)

bench-vs-artillery: build
	$(NODE) dist/bench/vs-artillery.js $(ARGS)

report: build
	$(NODE) dist/bench/report.js $(ARGS)

demo-life: build
	$(NODE) dist/bench/life.js --size $(SIZE) --generations $(GENERATIONS) $(if $(CHECK),--check,) $(ARGS)

demo-comments: build
	$(NODE) dist/bench/comments.js $(ARGS)

screenshots: build
	$(NODE) dist/bench/screenshots.js $(ARGS)

fuzz: build
	$(NODE) dist/bench/fuzz.js $(ARGS)

soak: build
	$(NODE) dist/bench/soak.js $(ARGS)

clean:
	rm -rf dist

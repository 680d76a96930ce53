# Every target installs and builds what it needs first.
PORT ?= 9000
ARGS ?=
NODE ?= node
TEST_FLAGS ?= --test-force-exit --test-timeout=60000

.PHONY: install build server baseline test bench-micro bench-c10k clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

build: install
	npx tsc -p tsconfig.json

server: build
	$(NODE) dist/server/cli.js --port $(PORT) $(ARGS)

baseline: build
	$(NODE) dist/server/baseline/cli.js --port $(PORT) $(ARGS)

test: build
	$(NODE) --test $(TEST_FLAGS) dist/test/*.test.js

bench-micro: build
	$(NODE) dist/bench/micro-codec.js

bench-c10k: build
	$(NODE) dist/bench/c10k.js

clean:
	rm -rf dist

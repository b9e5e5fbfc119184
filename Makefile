# tencentcloud-iotexplorer: build, test and run the demo without LuaRocks.
#   make                 build the core for Lua 5.4   -> build/lua5.4/tencentcloud/iotexplorer/core.so
#   make LUA=luajit      build the core for LuaJIT    -> build/luajit/tencentcloud/iotexplorer/core.so
#   make test            install what is missing, then run every spec on both interpreters, ASan, valgrind, fuzz
#   make check           the specs alone, installing nothing
#   make demo            start the local API emulator and call DescribeBatchProduction through the module
#   make install         PREFIX=/usr/local DESTDIR= (LUA=lua5.4 or LUA=luajit)

LUA        ?= lua5.4
CC         ?= cc
PREFIX     ?= /usr/local
DESTDIR    ?=

ifeq ($(LUA),luajit)
  LUA_INCDIR ?= /usr/include/luajit-2.1
  LUA_ABI    := 5.1
else
  LUA_INCDIR ?= /usr/include/$(LUA)
  LUA_ABI    := $(patsubst lua%,%,$(LUA))
endif

LUA_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_ABI)
BINDIR       ?= $(PREFIX)/bin

WARNINGS  = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c99 -fPIC -fvisibility=hidden $(WARNINGS) $(CFLAGS) -I$(LUA_INCDIR)
LIBS      = -lcurl -lcrypto -lpthread -lm

BUILD   = build/$(LUA)
CORE_SO = $(BUILD)/tencentcloud/iotexplorer/core.so
SOURCES = src/core.c src/lcore.c src/session.c src/call.c src/download.c src/outfile.c src/http_get.c \
          src/signals.c src/jsonenc.c src/lsigner.c src/tc3.c src/http.c src/multi.c
HEADERS = src/compat.h src/lcore.h src/signals.h src/outfile.h src/jsonenc.h src/tc3.h src/http.h src/multi.h

.PHONY: all test check demo install clean deps check-c lint bench test-asan test-valgrind fuzz dist node-deps

all: $(CORE_SO)

# The Redis rate-limit store's connection (hiredis), its own module so the core does not link hiredis.
REDIS_SO = $(BUILD)/tencentcloud/iotexplorer/redis_core.so
all: $(REDIS_SO)
$(REDIS_SO): src/redis.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ src/redis.c $(LDFLAGS) -lhiredis

# Never link liblua: the interpreter that loads the module provides its symbols.
$(CORE_SO): $(SOURCES) $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SOURCES) $(LDFLAGS) $(LIBS)

build/tc3_vectors: spec/c/tc3_vectors.c src/tc3.c src/tc3.h
	@mkdir -p build
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -o $@ spec/c/tc3_vectors.c src/tc3.c -lcrypto -lpthread

# Benchmarks: the C baselines, then bench/run.sh starts its own nginx and prints the table. Not part of
# `make test`; what it needs: sh .ci/deps.sh bench.
BENCH_HEADERS = bench/bench_util.h bench/sign_common.h

build/bench/sign_naive build/bench/sign_tuned: build/bench/%: bench/%.c $(BENCH_HEADERS)
	@mkdir -p build/bench
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -o $@ $< -lcrypto

build/bench/floor_post: bench/floor_post.c $(BENCH_HEADERS)
	@mkdir -p build/bench
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -o $@ $< -lcurl

build/bench/sign_tc3: bench/sign_tc3.c src/tc3.c src/tc3.h $(BENCH_HEADERS)
	@mkdir -p build/bench
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -Isrc -o $@ bench/sign_tc3.c src/tc3.c -lcrypto -lpthread

# The load of the nginx rows (bench/nginx_cpu.lua).
build/bench/load: bench/load.c
	@mkdir -p build/bench
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -o $@ bench/load.c -lcurl

bench:
	@sh bench/run.sh

# Where a call's user-space instructions go, against the same nginx: the floor, core.call and the client under
# callgrind, N and 3N calls each (bench/profile.sh; about a minute). Not part of `make test`.
.PHONY: profile
profile:
	@sh bench/profile.sh

# call_many (concurrency 8) beside the same calls one after another, both interpreters, against the emulator
# answering after 0, 200 and 300 ms under the service's 20/s window (about 5 minutes). Not part of `make test`.
.PHONY: bench-many
bench-many:
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory LUA=luajit
	@lua5.4 bench/many.lua

deps:
	@sh .ci/deps.sh test

# The official Node.js SDK that spec/conformance_spec.lua drives, at the versions spec/helpers/node/
# package-lock.json pins, installed outside the tracked tree (build/node) from the npm registry.
NODE_SDK = build/node/node_modules/tencentcloud-sdk-nodejs-common/package.json

node-deps: $(NODE_SDK)

$(NODE_SDK): spec/helpers/node/package.json spec/helpers/node/package-lock.json
	@mkdir -p build/node
	cp spec/helpers/node/package.json spec/helpers/node/package-lock.json build/node/
	cd build/node && npm ci --no-audit --no-fund
	@touch $@

# The README's test command, and CI's: installs what is missing (the only target besides demo that does:
# Debian packages, the Node SDK), then every spec on Lua 5.4 and LuaJIT (`make check`), the sanitizer,
# valgrind and fuzz runs. The last line is the specs' "N passed, N failed".
test: deps node-deps
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-valgrind
	@$(MAKE) --no-print-directory fuzz
	@cat build/spec-summary.txt

# The specs alone: luacheck, the signer's C vectors, then busted on both interpreters (about five minutes).
# Installs nothing: `make deps node-deps` (or `make test`) does.
check: lint
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory LUA=luajit
	@$(MAKE) --no-print-directory build/tc3_vectors
	@sh .ci/specs.sh

# gcc and clang, warnings as errors.
check-c:
	@$(MAKE) --no-print-directory CC=gcc BUILD=build/gcc-check LUA=lua5.4 -B build/gcc-check/tencentcloud/iotexplorer/core.so
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang-check LUA=luajit -B build/clang-check/tencentcloud/iotexplorer/core.so
	@$(MAKE) --no-print-directory CC=gcc BUILD=build/gcc-check LUA=lua5.4 -B build/gcc-check/tencentcloud/iotexplorer/redis_core.so
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang-check LUA=luajit -B build/clang-check/tencentcloud/iotexplorer/redis_core.so

lint:
	@luacheck -q lua spec bin bench

# Hardening. What they need: sh .ci/deps.sh hardening (make test installs it).
# test-asan: the core built with ASan + UBSan into build/asan/ and every spec on Lua 5.4 with the ASan
# runtime preloaded; any report fails the run. The spec helpers unset LD_PRELOAD for the processes they start.
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

test-asan:
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory CC=clang BUILD=build/asan LUA=lua5.4 CFLAGS="-O1 -g $(SAN_FLAGS)" \
		LDFLAGS="$(SAN_FLAGS) -shared-libasan"
	TCIOT_CPATH='build/asan/?.so' LD_PRELOAD="$$(clang -print-file-name=libclang_rt.asan-x86_64.so)" \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 busted --lua=lua5.4 -o utfTerminal

# test-valgrind: 10,000 calls, then 2,000 call_many items, against the emulator under memcheck; any byte
# definitely or indirectly lost fails.
test-valgrind:
	@$(MAKE) --no-print-directory LUA=lua5.4
	valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=1 lua5.4 spec/valgrind/loop.lua
	valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=1 lua5.4 spec/valgrind/redis_loop.lua
	valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=1 lua5.4 spec/valgrind/many_loop.lua

# fuzz: libFuzzer targets (clang 14) for the C that handles untrusted bytes, FUZZ_TIME seconds each. Seeds and
# regression inputs live in spec/fuzz/corpus/<target>/ (replayed first); new inputs go to build/fuzz/corpus/.
FUZZ_TARGETS = fuzz_tc3 fuzz_sign fuzz_response fuzz_date fuzz_encode
FUZZ_TIME   ?= 15
FUZZ_FLAGS   = -std=c99 -g -O1 $(SAN_FLAGS) -fsanitize=fuzzer $(WARNINGS) -Isrc -DTCIOT_TEST_HOOKS

build/fuzz/fuzz_tc3: spec/fuzz/fuzz_tc3.c src/tc3.c src/tc3.h
	@mkdir -p build/fuzz
	clang-14 $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_tc3.c src/tc3.c -lcrypto -lpthread

build/fuzz/fuzz_date: spec/fuzz/fuzz_date.c src/http.c src/http.h
	@mkdir -p build/fuzz
	clang-14 $(FUZZ_FLAGS) -o $@ spec/fuzz/fuzz_date.c src/http.c -lcurl -lcrypto

build/fuzz/fuzz_sign build/fuzz/fuzz_response build/fuzz/fuzz_encode: build/fuzz/%: spec/fuzz/%.c spec/fuzz/fuzz_lua.h $(SOURCES) $(HEADERS)
	@mkdir -p build/fuzz
	clang-14 $(FUZZ_FLAGS) -I/usr/include/lua5.4 -o $@ $< $(SOURCES) -llua5.4 $(LIBS)

fuzz:
	@$(MAKE) --no-print-directory $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t build/fuzz/artifacts; \
		echo "$$t: $(FUZZ_TIME) s"; \
		if ! build/fuzz/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			-artifact_prefix=build/fuzz/artifacts/$$t- build/fuzz/corpus/$$t spec/fuzz/corpus/$$t \
			> build/fuzz/$$t.log 2>&1; then \
			tail -n 40 build/fuzz/$$t.log; echo "$$t: FAILED (input saved under build/fuzz/artifacts/)"; exit 1; \
		fi; \
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb)' build/fuzz/$$t.log; \
	done

# The tool against the local API emulator; the script stops the emulator whatever happens.
demo:
	@sh .ci/deps.sh demo
	@$(MAKE) -s --no-print-directory LUA=lua5.4
	@sh spec/demo.sh

# bin/tciot gets the chosen interpreter's absolute path as its first line (plain `lua` may be 5.1).
LUA_INTERP ?= $(shell command -v $(LUA) 2>/dev/null || echo /usr/bin/$(LUA))

install: $(CORE_SO) $(REDIS_SO)
	install -d $(DESTDIR)$(LUA_LIBDIR)/tencentcloud/iotexplorer
	install -m 0755 $(CORE_SO) $(DESTDIR)$(LUA_LIBDIR)/tencentcloud/iotexplorer/core.so
	install -m 0755 $(REDIS_SO) $(DESTDIR)$(LUA_LIBDIR)/tencentcloud/iotexplorer/redis_core.so
	cd lua && find tencentcloud -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(LUA_SHAREDIR)/{} \;
	install -d $(DESTDIR)$(BINDIR)
	sed '1s|^#!.*|#!$(LUA_INTERP)|' bin/tciot > $(DESTDIR)$(BINDIR)/tciot
	chmod 0755 $(DESTDIR)$(BINDIR)/tciot

# A release for `luarocks install`: the tracked files as an archive, a rockspec whose source is that archive
# (DIST_URL: where it will be published; default: the archive itself), and a .src.rock holding both.
DIST_VERSION ?= 0.1.0
DIST_NAME     = tencentcloud-iotexplorer-$(DIST_VERSION)
DIST_DIR     ?= build/dist
DIST_URL     ?= file://$(abspath $(DIST_DIR))/$(DIST_NAME).tar.gz

dist:
	@mkdir -p $(DIST_DIR)
	git ls-files | tar -czf $(DIST_DIR)/$(DIST_NAME).tar.gz --transform 's,^,$(DIST_NAME)/,' -T -
	sed -e 's|^version = .*|version = "$(DIST_VERSION)-1"|' \
		-e 's|^   url = .*|   url = "$(DIST_URL)", dir = "$(DIST_NAME)",|' \
		tencentcloud-iotexplorer-scm-1.rockspec > $(DIST_DIR)/$(DIST_NAME)-1.rockspec
	cd $(DIST_DIR) && luarocks --lua-version=5.4 pack $(DIST_NAME)-1.rockspec

clean:
	rm -rf build tencentcloud src/*.o   # the last two: what luarocks make leaves behind

# tencentcloud-iotexplorer: build, test and run the demo without LuaRocks.
#   make                 build the core for Lua 5.4   -> build/lua5.4/tencentcloud/iotexplorer/core.so
#   make LUA=luajit      build the core for LuaJIT    -> build/luajit/tencentcloud/iotexplorer/core.so
#   make test            install what is missing, then run every spec on both interpreters
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
SOURCES = src/core.c src/tc3.c src/http.c
HEADERS = src/compat.h src/tc3.h src/http.h

.PHONY: all test demo install clean deps check-c lint

all: $(CORE_SO)

# Never link liblua: the interpreter that loads the module provides its symbols.
$(CORE_SO): $(SOURCES) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SOURCES) $(LDFLAGS) $(LIBS)

build/tc3_vectors: spec/c/tc3_vectors.c src/tc3.c src/tc3.h
	@mkdir -p build
	$(CC) -std=c99 $(WARNINGS) $(CFLAGS) -o $@ spec/c/tc3_vectors.c src/tc3.c -lcrypto -lpthread

deps:
	@sh .ci/deps.sh test

# The signer on its own in C, then every spec on Lua 5.4 and on LuaJIT.
test: deps
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory LUA=luajit
	@$(MAKE) --no-print-directory build/tc3_vectors
	./build/tc3_vectors
	busted --lua=lua5.4 -o utfTerminal
	busted --lua=luajit -o utfTerminal

# gcc and clang, warnings as errors.
check-c:
	@$(MAKE) --no-print-directory CC=gcc BUILD=build/gcc-check LUA=lua5.4 -B build/gcc-check/tencentcloud/iotexplorer/core.so
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang-check LUA=luajit -B build/clang-check/tencentcloud/iotexplorer/core.so

lint:
	luacheck lua spec $(wildcard bin)

demo:
	@sh .ci/deps.sh demo
	@$(MAKE) --no-print-directory LUA=lua5.4
	@lua5.4 spec/demo.lua

install: $(CORE_SO)
	install -d $(DESTDIR)$(LUA_LIBDIR)/tencentcloud/iotexplorer
	install -m 0755 $(CORE_SO) $(DESTDIR)$(LUA_LIBDIR)/tencentcloud/iotexplorer/core.so
	cd lua && find tencentcloud -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(LUA_SHAREDIR)/{} \;

clean:
	rm -rf build

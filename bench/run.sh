#!/bin/sh
# `make bench`: builds the core for both interpreters and the C baselines,
# starts Debian's nginx (our own instance: a temporary -p prefix, a loopback port, no system service) and
# runs bench/run.lua, which prints the table. Usage: sh bench/run.sh [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

# What the benchmarks need (nginx for the fast local server, lua-curl for the hand-rolled client) is
# installed by `sh .ci/deps.sh bench`, not here: no make target but test and demo installs anything.

$MAKE --no-print-directory LUA=lua5.4
$MAKE --no-print-directory LUA=luajit
$MAKE --no-print-directory build/bench/sign_naive build/bench/sign_tuned build/bench/sign_tc3 build/bench/floor_post

nginx=$(command -v nginx || echo /usr/sbin/nginx)
prefix=$(mktemp -d "${TMPDIR:-/tmp}/iotexplorer-bench.XXXXXX")
cleanup() {
  if [ -s "$prefix/nginx.pid" ]; then
    kill "$(cat "$prefix/nginx.pid")" 2>/dev/null || true
    sleep 0.2
  fi
  rm -rf "$prefix"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(lua5.4 -e 'local s = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); s:close(); print(p)')
mkdir -p "$prefix/tmp"
sed "s/@PORT@/$port/" bench/nginx.conf.in > "$prefix/nginx.conf"
# Where the client and the server run changes the kernel's share of a call by 3x on a VM (a wake-up on the
# other vCPU costs far more than one on the same): pin them apart, so every round measures the same thing.
pin_server="" BENCH_PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin_server="taskset -c 1" BENCH_PIN="taskset -c 0"
fi
export BENCH_PIN
$pin_server "$nginx" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log"
BENCH_PORT=$port lua5.4 -e '
  local socket = require("socket")
  for _ = 1, 100 do
    local c = socket.connect("127.0.0.1", tonumber(os.getenv("BENCH_PORT")))
    if c then c:close() os.exit(0) end
    socket.sleep(0.05)
  end
  io.stderr:write("nginx did not start listening\n")
  os.exit(1)' || { cat "$prefix/error.log" >&2; exit 1; }

lua5.4 bench/run.lua "http://127.0.0.1:$port" build/bench "${1:-9}"

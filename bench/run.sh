#!/bin/sh
# `make bench`: builds the core for both interpreters and the C baselines, starts our own nginx on loopback
# (bench/nginx.sh) and runs bench/run.lua, which prints the table. Usage: sh bench/run.sh [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

# What the benchmarks need (nginx for the fast local server, lua-curl for the hand-rolled client) is
# installed by `sh .ci/deps.sh bench`, not here: no make target but test and demo installs anything.

$MAKE --no-print-directory LUA=lua5.4
$MAKE --no-print-directory LUA=luajit
$MAKE --no-print-directory build/bench/sign_naive build/bench/sign_tuned build/bench/sign_tc3 build/bench/floor_post build/bench/load

# shellcheck source=bench/nginx.sh
. bench/nginx.sh
trap nginx_stop EXIT
trap 'exit 130' INT TERM
# Where the client and the server run changes the kernel's share of a call by 3x on a VM (a wake-up on the
# other vCPU costs far more than one on the same): pin them apart, so every round measures the same thing.
pin_server="" BENCH_PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin_server="taskset -c 1" BENCH_PIN="taskset -c 0"
fi
export BENCH_PIN
# shellcheck disable=SC2086 # pin_server is a command and its arguments, or nothing
nginx_start $pin_server

lua5.4 bench/run.lua "$nginx_url" build/bench "${1:-9}"

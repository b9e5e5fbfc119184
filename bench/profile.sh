#!/bin/sh
# `make profile`: builds the core for both interpreters and the floor, starts our own nginx on loopback
# (bench/nginx.sh) and runs bench/profile.lua, which counts under callgrind where a call's user-space
# instructions go and prints the table. Usage: sh bench/profile.sh [N]   (N and 3N calls a case; default 1000)
# Set PROFILE_INTERPRETERS="lua5.4" to leave LuaJIT out.
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

$MAKE --no-print-directory LUA=lua5.4
$MAKE --no-print-directory LUA=luajit
$MAKE --no-print-directory build/bench/floor_post

# shellcheck source=bench/nginx.sh
. bench/nginx.sh
profiles=""
cleanup() {
  nginx_stop
  if [ -n "$profiles" ]; then rm -rf "$profiles"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC2119 # no command to run nginx under: callgrind counts only the client
nginx_start
profiles=$(mktemp -d "${TMPDIR:-/tmp}/iotexplorer-profile.XXXXXX")

lua5.4 bench/profile.lua "$nginx_url" build/bench "$profiles" "${1:-1000}" \
  "${PROFILE_INTERPRETERS:-lua5.4 luajit}"

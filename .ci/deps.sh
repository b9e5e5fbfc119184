#!/bin/sh
# Installs the Debian 12 packages a make target needs: with apt-get when root, otherwise it prints the
# one apt-get line to run and fails. Usage: sh .ci/deps.sh demo|test
set -eu
build="make gcc lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson ca-certificates"
emulator="lua-socket lua-luaossl"
case "${1:-test}" in
  demo) want="$build $emulator" ;;
  test) want="$build $emulator luajit2 libluajit2-5.1-dev lua-busted clang" ;;
  *) echo "usage: sh .ci/deps.sh demo|test" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing="$missing $pkg" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # luajit2 (OpenResty's LuaJIT) replaces Debian's luajit, which conflicts with nginx's Lua module.
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "Missing Debian packages. Run this once, then try again:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi

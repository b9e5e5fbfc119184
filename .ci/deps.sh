#!/bin/sh
# Installs the Debian 12 packages a make target needs: with apt-get when root, otherwise it prints the
# one apt-get line to run and fails. Usage: sh .ci/deps.sh demo|test|bench|hardening
set -eu
build="make gcc libc6-dev lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson ca-certificates"
emulator="lua-socket lua-luaossl"
case "${1:-test}" in
  demo) want="$build $emulator" ;;
  # nginx + openssl: spec/tls_spec.lua makes a local CA and puts a TLS front (our own nginx) before the emulator.
  # libnginx-mod-http-lua + lua-resty-core (they need luajit2, not luajit): spec/nginx_spec.lua.
  # nodejs (and npm, below): spec/conformance_spec.lua drives the emulator with the official Node.js SDK.
  test) want="$build $emulator luajit2 libluajit2-5.1-dev lua-busted lua-check luarocks clang nginx openssl nodejs"
        want="$want libnginx-mod-http-lua lua-resty-core valgrind libclang-rt-14-dev" ;;  # and what hardening needs
  bench) want="$build $emulator luajit2 libluajit2-5.1-dev nginx lua-curl" ;;  # spec/bench/run.sh
  hardening) want="$build $emulator lua-busted clang valgrind libclang-rt-14-dev" ;;  # test-asan, test-valgrind, fuzz
  *) echo "usage: sh .ci/deps.sh demo|test|bench|hardening" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing="$missing $pkg" ;; esac
done
# Debian ships npm apart from nodejs; NodeSource's nodejs includes it (and conflicts with Debian's npm).
case " $want " in *" nodejs "*) command -v npm >/dev/null 2>&1 || missing="$missing npm" ;; esac
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  # Installing nginx would start the system service on port 80: forbid service starts for this install
  # (only when no policy is in place already, and only for its duration).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
  fi
  rc=0
  apt-get update -qq || rc=$?
  # luajit2 (OpenResty's LuaJIT) replaces Debian's luajit, which conflicts with nginx's Lua module.
  [ "$rc" -eq 0 ] && { apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?; }
  [ -n "$policy" ] && rm -f "$policy"
  [ "$rc" -eq 0 ] || exit "$rc"
else
  echo "Missing Debian packages. Run this once, then try again:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi

# Sourced by the bench scripts (run.sh, profile.sh), never run: our own instance of Debian's nginx on
# loopback, serving bench/nginx.conf.in from a temporary -p prefix (no system service, nothing under /var or
# /etc). From the repository root:
#
#   . bench/nginx.sh
#   trap nginx_stop EXIT          # or a cleanup of the caller's own that calls nginx_stop
#   trap 'exit 130' INT TERM
#   nginx_start [COMMAND...]      # COMMAND (e.g. taskset -c 1) runs nginx; sets nginx_port, nginx_url
#
# nginx_start returns once nginx accepts connections; it fails, showing nginx's error log, if it never does.

# shellcheck disable=SC2034 # nginx_url is for the scripts that source this file
nginx_prefix="" nginx_port="" nginx_url=""

nginx_stop() {
  if [ -n "$nginx_prefix" ]; then
    if [ -s "$nginx_prefix/nginx.pid" ]; then
      kill "$(cat "$nginx_prefix/nginx.pid")" 2>/dev/null || true
      sleep 0.2
    fi
    rm -rf "$nginx_prefix"
    nginx_prefix=""
  fi
}

nginx_start() {
  _nginx=$(command -v nginx || echo /usr/sbin/nginx)
  nginx_prefix=$(mktemp -d "${TMPDIR:-/tmp}/iotexplorer-bench.XXXXXX")
  nginx_port=$(lua5.4 -e 'local s = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); s:close(); print(p)')
  nginx_url="http://127.0.0.1:$nginx_port"
  mkdir -p "$nginx_prefix/tmp"
  sed "s/@PORT@/$nginx_port/" bench/nginx.conf.in > "$nginx_prefix/nginx.conf"
  "$@" "$_nginx" -p "$nginx_prefix/" -c "$nginx_prefix/nginx.conf" -e "$nginx_prefix/error.log"
  BENCH_PORT=$nginx_port lua5.4 -e '
    local socket = require("socket")
    for _ = 1, 100 do
      local c = socket.connect("127.0.0.1", tonumber(os.getenv("BENCH_PORT")))
      if c then c:close() os.exit(0) end
      socket.sleep(0.05)
    end
    io.stderr:write("nginx did not start listening\n")
    os.exit(1)' || { cat "$nginx_prefix/error.log" >&2; return 1; }
}

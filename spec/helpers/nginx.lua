-- Spec helper: runs Debian's nginx (with libnginx-mod-http-lua) from the test run itself: a temporary -p
-- prefix, a loopback port, its own pid and logs, no system service.
--
--   local nginx = require("helpers.nginx")
--   local ng = nginx.start{ workers = 2, vars = { EMULATOR = emu.url, ... } }   -- spec/helpers/nginx.conf.in
--   local status, headers, body = ng:get("/describe?...")
--   ng:stop()                                                                   -- always, in a finally/teardown
--
-- nginx runs in the foreground (daemon off) under a small shell that holds the read end of a pipe from
-- this process: when the pipe closes (ng:stop(), or this process dying for any reason) the shell stops
-- nginx with SIGTERM and waits for it, so no nginx outlives the test run.
local socket = require("socket")
local util = require("helpers.util")

local M = {}
local Nginx = {}
Nginx.__index = Nginx

M.root = util.ROOT

local shell_quote, read_file, alive = util.shell_quote, util.read_file, util.alive

-- The nginx binary and the module files; nil, why when something is missing.
function M.find()
  local nginx
  for _, p in ipairs({ "/usr/sbin/nginx", "/usr/local/sbin/nginx" }) do
    if util.exists(p) then nginx = p break end
  end
  if not nginx then return nil, "nginx is not installed (sh .ci/deps.sh test)" end
  local modules = "/usr/lib/nginx/modules"
  for _, m in ipairs({ "ndk_http_module.so", "ngx_http_lua_module.so" }) do
    if not util.exists(modules .. "/" .. m) then
      return nil, modules .. "/" .. m .. " is missing (apt-get install libnginx-mod-http-lua)"
    end
  end
  return { nginx = nginx, modules = modules }
end

local function whoami()
  local ok, out = util.run("id -un")
  return ok and out:match("[^\n]+") or nil
end

-- opts: workers (default 1), vars (table: @NAME@ in the template is replaced by vars.NAME), template
-- (path, default spec/helpers/nginx.conf.in), timeout (seconds to wait for the port, default 10).
function M.start(opts)
  opts = opts or {}
  local found = assert(M.find())
  local template = assert(read_file(opts.template or (M.root .. "/spec/helpers/nginx.conf.in")))
  local last_err
  for _ = 1, 3 do -- a port picked here can be taken before nginx binds it: try another
    local prefix = util.tmpdir("iotexplorer-nginx")
    util.check_output("mkdir -p " .. shell_quote(prefix .. "/logs") .. " " .. shell_quote(prefix .. "/tmp"))
    local port = util.free_port()
    local user = whoami()
    local vars = {
      PORT = port, WORKERS = opts.workers or 1, ROOT = M.root, PREFIX = prefix, MODULES = found.modules,
      -- As root, nginx would run its workers as "nobody"; keep them as the user running the specs, so they
      -- read the repository wherever it is checked out.
      USER = (user == "root") and "user root;" or "",
    }
    for k, v in pairs(opts.vars or {}) do vars[k] = v end
    -- The upstreams of ngx_http.lua's internal locations: the emulator's address, a TLS front if given.
    vars.EMULATOR_ADDR = vars.EMULATOR_ADDR or tostring(vars.EMULATOR or ""):match("^%a+://([^/]+)") or "127.0.0.1:9"
    vars.TLS_ADDR = vars.TLS_ADDR or "127.0.0.1:9"
    vars.TLS_PORT = vars.TLS_ADDR:match(":(%d+)$")
    vars.CA_FILE = vars.CA_FILE or "/etc/ssl/certs/ca-certificates.crt"
    local conf = template:gsub("@([%w_]+)@", function(name)
      local v = vars[name]
      if v == nil then error("nginx.conf.in: no value for @" .. name .. "@", 0) end
      return tostring(v)
    end)
    util.write_file(prefix .. "/nginx.conf", conf)

    -- The shell also removes the prefix once nginx is gone (unless TCIOT_KEEP_NGINX_PREFIX is set).
    local cleanup = os.getenv("TCIOT_KEEP_NGINX_PREFIX") and "" or ("; rm -rf " .. shell_quote(prefix))
    local cmd = string.format(
      "env -u LD_PRELOAD %s -p %s -c %s -e %s -g 'daemon off;' & pid=$!; echo $pid > %s; "
        .. "cat > /dev/null; kill -TERM $pid 2>/dev/null; wait $pid%s",
      found.nginx, shell_quote(prefix .. "/"), shell_quote(prefix .. "/nginx.conf"),
      shell_quote(prefix .. "/logs/error.log"), shell_quote(prefix .. "/master.pid"), cleanup)
    local pipe = assert(io.popen("exec sh -c " .. shell_quote(cmd) .. " >/dev/null 2>&1", "w"))
    local self = setmetatable({ pipe = pipe, prefix = prefix, port = port, host = "127.0.0.1" }, Nginx)
    local ready = util.poll(function()
      self.pid = self.pid or tonumber(read_file(prefix .. "/master.pid") or "")
      if self.pid and not alive(self.pid) then return "exited" end
      return util.listening(port) and "ready"
    end, opts.timeout or 10)
    if ready == "ready" then
      return self
    end
    last_err = self:error_log()
    self:stop()
    if not last_err:find("Address already in use", 1, true) then break end
  end
  error("nginx did not start; error.log:\n" .. tostring(last_err), 2)
end

function Nginx:error_log()
  return read_file(self.prefix .. "/logs/error.log") or ""
end

-- Lines of error.log at level crit, alert or emerg (a crashed worker is logged as alert).
function Nginx:serious_errors()
  local lines = {}
  for line in self:error_log():gmatch("[^\n]+") do
    if line:find("%[crit%]") or line:find("%[alert%]") or line:find("%[emerg%]") then
      lines[#lines + 1] = line
    end
  end
  return lines
end

-- Splits a whole HTTP/1.1 response (read until the server closed) into status, headers, body; a chunked
-- body is decoded.
local function parse_response(raw)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, "incomplete response: " .. raw end
  local status = tonumber(head:match("^HTTP/%d%.%d (%d%d%d)"))
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[name:lower()] = value end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local out, pos = {}, 1
    while true do
      local size_hex, after = body:match("^(%x+)[^\r\n]*\r\n()", pos)
      local size = size_hex and tonumber(size_hex, 16)
      if not size or size == 0 then break end
      out[#out + 1] = body:sub(after, after + size - 1)
      pos = after + size + 2
    end
    body = table.concat(out)
  end
  return status, headers, body
end

M.parse_response = parse_response

-- Opens a connection and sends GET path on it (Connection: close); returns a handle for collect().
function Nginx:send(path)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect(self.host, self.port))
  assert(c:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
  c:settimeout(0)
  return { sock = c, path = path, buf = {} }
end

-- Waits for the answers to every handle of `handles` (from send) with socket.select, all at once.
-- Fills in status, body and done_at (socket.gettime()) and returns the handles in the order their
-- answers completed, and the number still unanswered after `timeout` seconds (default 60).
function Nginx.collect(_, handles, timeout)
  local pending, by_sock, order = {}, {}, {}
  for _, h in ipairs(handles) do
    pending[#pending + 1] = h.sock
    by_sock[h.sock] = h
  end
  local deadline = socket.gettime() + (timeout or 60)
  while #pending > 0 and socket.gettime() < deadline do
    local readable = socket.select(pending, nil, 0.5)
    for _, s in ipairs(readable) do
      local h = by_sock[s]
      local data, err, partial = s:receive(65536)
      local chunk = data or partial
      if chunk and #chunk > 0 then h.buf[#h.buf + 1] = chunk end
      if err == "closed" then
        h.status, h.headers, h.body = parse_response(table.concat(h.buf))
        h.done_at = socket.gettime()
        order[#order + 1] = h
        s:close()
        for j, p in ipairs(pending) do
          if p == s then table.remove(pending, j) break end
        end
      end
    end
  end
  for _, s in ipairs(pending) do s:close() end
  return order, #pending
end

-- A blocking GET on a fresh connection: status, headers, body (or nil, err).
function Nginx:get(path, timeout)
  local h = self:send(path)
  local done = self:collect({ h }, timeout or 30)
  if not done[1] then return nil, "no answer to GET " .. path end
  return h.status, h.headers, h.body
end

-- Stops nginx (SIGTERM through the watchdog shell) and removes the prefix. Idempotent.
function Nginx:stop()
  if self.stopped then return end
  self.stopped = true
  if self.pipe then pcall(self.pipe.close, self.pipe) end -- the shell kills nginx and waits for it
  if self.pid and alive(self.pid) then os.execute("kill -KILL " .. math.floor(self.pid) .. " 2>/dev/null") end
  if not os.getenv("TCIOT_KEEP_NGINX_PREFIX") then
    util.rm_rf(self.prefix)
  end
end

return M

-- Spec helper: runs Debian's redis-server from the test run itself, on a loopback port and a unix socket in
-- a temporary folder, with no persistence and no system service. Works under lua5.4 and LuaJIT.
--
--   local redis = require("helpers.redis")
--   local r = redis.start{ password = "s3cret" }     -- r.url, r.unix_url, r.port, r.dir
--   r:command("SCRIPT", "FLUSH")                       -- RESP over LuaSocket: independent of src/redis.c
--   r:kill()  r:restart()                              -- SIGKILL, then a fresh server on the same port
--   r:stop()                                           -- always, in a finally/teardown
--
-- Each server runs under a small shell that holds the read end of a pipe from this process: when the pipe
-- closes (r:stop(), or this process dying) the shell stops redis-server, so none outlives the test run.
local socket = require("socket")
local util = require("helpers.util")

local M = {}
local Redis = {}
Redis.__index = Redis

local shell_quote, read_file, alive = util.shell_quote, util.read_file, util.alive

function M.find()
  for _, p in ipairs({ "/usr/bin/redis-server", "/usr/local/bin/redis-server" }) do
    if util.exists(p) then return p end
  end
  return nil, "redis-server is not installed (sh .ci/deps.sh test)"
end

function Redis:_launch()
  local args = {
    "--port", tostring(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", self.dir, "--unixsocket", self.socket, "--unixsocketperm", "700", "--daemonize", "no",
    "--logfile", self.dir .. "/redis.log", "--databases", "4",
  }
  if self.password then
    args[#args + 1] = "--requirepass"
    args[#args + 1] = self.password
  end
  local words = {}
  for i, a in ipairs(args) do words[i] = shell_quote(a) end
  local pidfile = self.dir .. "/redis.pid." .. self.launches
  local cmd = string.format("env -u LD_PRELOAD %s %s & pid=$!; echo $pid > %s; cat > /dev/null; "
    .. "kill -TERM $pid 2>/dev/null; wait $pid", self.binary, table.concat(words, " "), shell_quote(pidfile))
  self.launches = self.launches + 1
  self.pipes[#self.pipes + 1] = assert(io.popen("exec sh -c " .. shell_quote(cmd) .. " >/dev/null 2>&1", "w"))
  self.pid = nil
  local ready = util.poll(function()
    self.pid = self.pid or tonumber(read_file(pidfile) or "")
    if self.pid and not alive(self.pid) then return "exited" end
    return util.listening(self.port) and "ready"
  end, 10)
  return ready == "ready"
end

-- opts: password (requirepass). Raises when the server does not come up.
function M.start(opts)
  opts = opts or {}
  local binary = assert(M.find())
  for _ = 1, 3 do -- a port picked here can be taken before redis binds it: try another
    local dir = util.tmpdir("iotexplorer-redis")
    local self = setmetatable({
      binary = binary, dir = dir, socket = dir .. "/redis.sock", port = util.free_port(),
      password = opts.password, pipes = {}, launches = 0,
    }, Redis)
    if self:_launch() then
      local auth = self.password and (":" .. self.password .. "@") or ""
      self.url = "redis://" .. auth .. "127.0.0.1:" .. self.port
      self.unix_url = "unix://" .. auth .. self.socket
      return self
    end
    local log = read_file(dir .. "/redis.log") or ""
    self:stop()
    if not log:find("Address already in use", 1, true) then
      error("redis-server did not start; log:\n" .. log, 2)
    end
  end
  error("redis-server did not start: no free port", 2)
end

-- Stops the server with SIGKILL, as a crash would (nothing is saved: there is nothing to save).
function Redis:kill()
  if self.pid and alive(self.pid) then
    os.execute("kill -KILL " .. math.floor(self.pid) .. " 2>/dev/null")
    util.wait_for("redis-server to exit", function() return not alive(self.pid) end, 10)
  end
end

-- A new server on the same port and socket, empty (no scripts, no keys).
function Redis:restart()
  self:kill()
  os.remove(self.socket)
  assert(self:_launch(), "redis-server did not restart")
end

local function encode(args)
  local out = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(out)
end

local function read_reply(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return false end
    local data = sock:receive(n + 2)
    return data and data:sub(1, n)
  end
  if kind == "*" then
    local t = {}
    for i = 1, tonumber(rest) do t[i] = read_reply(sock) end
    return t
  end
  return nil, "bad reply: " .. line
end

-- One command on a fresh connection (authenticated when the server has a password).
function Redis:command(...)
  local sock = assert(socket.connect("127.0.0.1", self.port))
  sock:settimeout(5)
  if self.password then
    assert(sock:send(encode({ "AUTH", self.password })))
    assert(read_reply(sock))
  end
  assert(sock:send(encode({ ... })))
  local res, err = read_reply(sock)
  sock:close()
  return res, err
end

function Redis:stop()
  if self.stopped then return end
  self.stopped = true
  for _, p in ipairs(self.pipes) do pcall(p.close, p) end
  if self.pid and alive(self.pid) then os.execute("kill -KILL " .. math.floor(self.pid) .. " 2>/dev/null") end
  util.rm_rf(self.dir)
end

return M

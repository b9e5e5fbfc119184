-- Spec helper: the small utilities every spec and helper needs (files, shell commands, processes, ports,
-- temporary folders, polling). Works under lua5.4 and LuaJIT.
--
--   local util = require("helpers.util")
--   local ok, output, code = util.run("make -s install DESTDIR=" .. util.shell_quote(dir))
local socket = require("socket")

local M = {}

-- The interpreter running the specs: "lua5.4" or "luajit", which is also the name of its build folder
-- (build/<flavour>/, see the Makefile) and of the command that runs a child under the same interpreter.
M.FLAVOUR = (type(jit) == "table") and "luajit" or (_VERSION:gsub("Lua ", "lua"))
M.INTERPRETER = M.FLAVOUR

-- Absolute path of the repository, found from this file's own location (spec/helpers/util.lua), so that
-- it does not depend on how the file was reached.
M.ROOT = (function()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/helpers/[^/]*$") or "spec"
  local root = dir .. "/.."
  if root:sub(1, 1) ~= "/" then root = (os.getenv("PWD") or ".") .. "/" .. root end
  -- ".../spec/.." reads badly in the paths written into nginx.conf and in messages.
  return (root:gsub("/spec/%.%.$", ""))
end)()

-- One word for sh, whatever s holds.
function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The whole file, or nil when it cannot be opened.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- True when path can be opened for reading (without reading it: some are binaries).
function M.exists(path)
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  return true
end

-- Writes (replaces) the file; raises on failure.
function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

-- os.execute's result as a boolean: Lua 5.4 returns true/nil, Lua 5.1 and LuaJIT the status number (0 is
-- success, and any number is truthy, so `assert(os.execute(...))` alone never fails there).
function M.execute(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

-- Runs cmd under sh; returns ok (exit status 0), its stdout and stderr together, and the exit status.
-- The shell prints the status after the output: the close() of a pipe reports it in Lua 5.4, but not in
-- LuaJIT (true whatever happened) and Lua 5.1 returns it alone, so it cannot be relied on. LD_PRELOAD
-- (make test-asan) is not passed on.
function M.run(cmd)
  local p = assert(io.popen("env -u LD_PRELOAD sh -c " .. M.shell_quote(cmd) .. " 2>&1; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
  local code = tonumber(rc)
  return code == 0, body or out, code
end

-- Like run, but raises (naming the command and showing its output) unless it succeeds; returns the output.
function M.check_output(cmd)
  local ok, out, code = M.run(cmd)
  if not ok then
    error("command failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. tostring(out), 2)
  end
  return out
end

-- The names in dir (without . and ..), sorted.
function M.listing(dir)
  local out = {}
  for name in M.check_output("ls -a " .. M.shell_quote(dir)):gmatch("[^\n]+") do
    if name ~= "." and name ~= ".." then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

-- A new, empty folder of our own under $TMPDIR (or /tmp). Mode 0755: nginx's workers (nobody, when run as
-- root) read files below some of them. tag: the start of its name.
function M.tmpdir(tag)
  local path = M.check_output("mktemp -d \"${TMPDIR:-/tmp}/" .. (tag or "iotexplorer-spec") .. ".XXXXXX\"")
    :gsub("%s+$", "")
  M.check_output("chmod 0755 " .. M.shell_quote(path))
  return path
end

function M.rm_rf(path)
  if path then os.execute("rm -rf " .. M.shell_quote(path)) end
end

-- The state letter of process pid from /proc/<pid>/stat ("R", "S", "Z", ...), or nil when there is none.
function M.proc_state(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat")
  return stat and stat:match("^%d+ %b() (%a)")
end

-- True while the process exists and is not a zombie.
function M.alive(pid)
  local state = M.proc_state(pid)
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- A loopback port that was free a moment ago: nothing listens on it, so a connection is refused at once
-- (dead_port), or a server can bind it (free_port; another process may take it first: retry then).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

M.dead_port = M.free_port

-- True when something accepts connections on 127.0.0.1:port.
function M.listening(port)
  local c = socket.connect("127.0.0.1", port)
  if c then c:close() return true end
  return false
end

-- Calls fn every 20 ms until it returns a true value, which is returned; nil once timeout seconds (default
-- 10) have passed without one.
function M.poll(fn, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while true do
    local v = fn()
    if v then return v end
    if socket.gettime() >= deadline then return nil end
    socket.sleep(0.02)
  end
end

-- Like poll, but raises "timed out waiting for <what>" at the caller.
function M.wait_for(what, fn, timeout)
  local v = M.poll(fn, timeout)
  if not v then error("timed out waiting for " .. what, 2) end
  return v
end

-- A clock that only moves when someone sleeps (each sleep is recorded) or a spec sets c.t.
function M.fake_clock(t)
  local c = { t = t or 0, sleeps = {} }
  c.now = function() return c.t end
  c.sleep = function(s) c.sleeps[#c.sleeps + 1] = s; c.t = c.t + s end
  return c
end

-- The command that runs a Lua script in a child of the interpreter running the specs, with the modules of
-- this tree (lua/ and build/<flavour>/, or opts.cpath), without LD_PRELOAD. args: words, quoted here.
-- opts.env: extra variables (name -> value).
function M.lua_command(script, args, opts)
  opts = opts or {}
  local q = M.shell_quote
  local words = { "env -u LD_PRELOAD" }
  local assigns = {}
  for k, v in pairs(opts.env or {}) do assigns[#assigns + 1] = k .. "=" .. q(v) end
  table.sort(assigns)
  for _, a in ipairs(assigns) do words[#words + 1] = a end
  words[#words + 1] = "LUA_PATH=" .. q("lua/?.lua;lua/?/init.lua;;")
  words[#words + 1] = "LUA_CPATH=" .. q(opts.cpath or ("build/" .. M.FLAVOUR .. "/?.so;;"))
  words[#words + 1] = M.INTERPRETER
  words[#words + 1] = q(script)
  for _, a in ipairs(args or {}) do words[#words + 1] = q(a) end
  return table.concat(words, " ")
end

return M

-- Spec helper: tciot as users run it. `make install` into a private DESTDIR for the interpreter running
-- the spec, then the installed script in a clean environment (env -i) against the local emulator.
--
--   local tciot = require("helpers.tciot")
--   local t = tciot.start({ fixture = { status_step_seconds = 0.15 } })   -- in setup()
--   local r = t:run({ "DescribeBatchProduction", ... }, { env = { TENCENTCLOUD_REGION = false } })
--   -- r.code, r.stdout, r.stderr
--   local p = t:spawn({ ... })   -- in the background: p.pid, p:wait(timeout) -> code, p.stdout, p.stderr
--   t:stop()                     -- in teardown()
local luassert = require("luassert")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local M = {}
local T = {}
T.__index = T

local quote, read = util.shell_quote, util.read_file

-- opts: fixture (for the emulator), emulator = false (none).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({}, T)
  if opts.emulator ~= false then
    self.emu = emulator.start({ fixture = opts.fixture or {} })
  end
  self.work = util.tmpdir()
  self.home = self.work .. "/home"
  assert(util.execute("mkdir -p " .. quote(self.home)))
  local log = self.work .. "/install.log"
  local ok = util.execute(string.format("make -s --no-print-directory install DESTDIR=%s PREFIX=/usr LUA=%s >%s 2>&1",
    quote(self.work .. "/root"), util.INTERPRETER, quote(log)))
  assert(ok, "make install failed:\n" .. (read(log) or ""))
  self.installed = self.work .. "/root/usr/bin/tciot"
  self.runs = 0
  return self
end

function T:stop()
  if self.emu then self.emu:stop() end
  util.rm_rf(self.work)
end

-- The shell command for tciot with args. opts: env (false removes a variable), no_endpoint, tool (a path),
-- tty (under script(1), so that stderr is a terminal; stdout and stderr then both land in stdout),
-- columns (the terminal's width then).
function T:command(args, opts)
  opts = opts or {}
  local env = {
    PATH = "/usr/local/bin:/usr/bin:/bin", HOME = self.home, LANG = "C",
    TENCENTCLOUD_REGION = "ap-guangzhou",
  }
  if self.emu then
    env.TENCENTCLOUD_SECRET_ID, env.TENCENTCLOUD_SECRET_KEY = self.emu.secret_id, self.emu.secret_key
  end
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  local words = { "env", "-i" }
  local names = {}
  for k in pairs(env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do words[#words + 1] = quote(k .. "=" .. env[k]) end
  words[#words + 1] = quote(opts.tool or self.installed)
  if self.emu and not opts.no_endpoint then
    words[#words + 1] = "--endpoint"
    words[#words + 1] = quote(self.emu.url)
  end
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  local cmd = table.concat(words, " ")
  if opts.tty then
    local size = opts.columns and ("stty cols " .. opts.columns .. " rows 24 2>/dev/null; ") or ""
    cmd = "script -qec " .. quote(size .. cmd .. " 2>&1") .. " /dev/null"
  end
  return cmd
end

function T:files()
  self.runs = self.runs + 1
  local base = string.format("%s/run%d", self.work, self.runs)
  return base .. ".out", base .. ".err", base .. ".pid", base .. ".rc"
end

-- Runs tciot and waits: { code, stdout, stderr }. opts: as for command, and stdin (a file).
function T:run(args, opts)
  opts = opts or {}
  local out, err = self:files()
  local _, _, code = util.run(self:command(args, opts) .. " <" .. quote(opts.stdin or "/dev/null") .. " >"
    .. quote(out) .. " 2>" .. quote(err))
  return { code = code, stdout = read(out) or "", stderr = read(err) or "" }
end

-- Starts tciot in the background. Returns a handle: pid (tciot's own: the shell execs into it),
-- wait(timeout) -> exit code or nil, and stdout(), stderr().
function T:spawn(args, opts)
  local out, err, pidfile, rcfile = self:files()
  -- The outer shell waits for tciot and records its status; the inner one execs into tciot (same pid).
  local inner = "echo $$ >" .. quote(pidfile) .. "; exec " .. self:command(args, opts)
  local cmd = "(sh -c " .. quote(inner) .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err)
    .. "; echo $? >" .. quote(rcfile) .. ") >/dev/null 2>&1 &"
  assert(util.execute("env -u LD_PRELOAD sh -c " .. quote(cmd)))
  local h = {}
  h.pid = util.wait_for("tciot's pid", function() return tonumber(read(pidfile) or "") end, 10)
  function h.wait(_, timeout)
    return util.poll(function() return tonumber(read(rcfile) or "") end, timeout or 10)
  end
  function h.stdout() return read(out) or "" end
  function h.stderr() return read(err) or "" end
  return h
end

-- The hooks of a describe block that runs tciot against an emulator whose batches move one Status every
-- `step` seconds (reset before each test):
--   local h = tciot.hooks(0.15)
--   setup(h.setup); teardown(h.teardown); before_each(h.before_each)   -- then h.t, h.emu
function M.hooks(step)
  local h = {}
  function h.setup()
    h.t = M.start({ fixture = { status_step_seconds = step } })
    h.emu = h.t.emu
  end
  function h.teardown()
    if h.t then h.t:stop() end
  end
  function h.before_each()
    h.emu:reset()
    h.emu:set({ status_step_seconds = step })
  end
  return h
end

-- The lists one after another, as one list.
function M.concat(...)
  local out = {}
  for i = 1, select("#", ...) do
    for _, v in ipairs((select(i, ...))) do out[#out + 1] = v end
  end
  return out
end

-- stdout decoded as JSON (raises, showing both streams, when it is not).
function M.json(r)
  local v = require("cjson.safe").decode(r.stdout)
  luassert(type(v) == "table", "stdout is not JSON: " .. r.stdout .. "\nstderr: " .. r.stderr)
  return v
end

-- Asserts the exit code and, when given, a plain substring of stderr.
function M.expect(r, code, stderr_text)
  luassert.are.equal(code, r.code, "exit code; stderr: " .. r.stderr .. "\nstdout: " .. r.stdout)
  if stderr_text then
    luassert.truthy(r.stderr:find(stderr_text, 1, true), "stderr lacks '" .. stderr_text .. "': " .. r.stderr)
  end
end

return M

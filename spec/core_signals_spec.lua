-- SIGINT and SIGTERM while the core blocks, in real child processes of the interpreter running the specs
-- (lua5.4 or luajit, whose own handlers turn SIGINT into the "interrupted!" error): a slow call against
-- the emulator, a long core.sleep, and with core.trap_signals the Interrupted error instead.
local emulator = require("helpers.emulator")
local util = require("helpers.util")
local core = require("tencentcloud.iotexplorer.core")

-- A loaded 2-core machine: the core ends the operation within a second; allow for scheduling.
local LIMIT = 2.5

local CHILD = [[
local core = require("tencentcloud.iotexplorer.core")
local what, url, id, key, out = arg[1], arg[2], arg[3], arg[4], arg[5]
local host, port = url:match("^http://([^:/]+):(%d+)")
local stat = io.open("/proc/self/stat"):read("*l")
local function say(...) io.stdout:write(table.concat({ ... }, " "), "\n") io.stdout:flush() end
local trap = what:find("^trap") ~= nil
if trap then assert(core.trap_signals(true)) end
local s = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou",
  timeout = 60, interruptible = not trap })
local req = { secret_id = id, secret_key = key, action = "DescribeBatchProduction", version = "2019-04-23",
  params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } }
say("pid", stat:match("^(%d+)"))
if what == "call" or what == "trap-call" then
  local res, err = core.call(s, req)
  say("returned", tostring(res), err and err.code or "", tostring(err and err.signal), tostring(core.interrupted()))
elseif what == "download" then
  local link = assert(core.call(s, req)).DownloadUrl
  say("downloading")
  local res, err = core.download(s, { url = link, path = out .. "/devices.csv" })
  say("returned", tostring(res), err and err.code or "")
elseif what == "after-call" then
  assert(core.call(s, req))
  say("called")
  local stop = core.now() + 20
  while core.now() < stop do end                              -- Lua code, no operation of ours
  say("spun")
elseif what == "interrupted-between-calls" then               -- the interpreter's handler resets SIGINT
  local link = assert(core.call(s, req)).DownloadUrl
  say("called")
  local ok, err = pcall(function()
    local stop = core.now() + 20
    while core.now() < stop do end
  end)
  say("caught", tostring(ok), tostring(err):match("interrupted!") or tostring(err))
  while not io.open(out .. ".go") do core.sleep(0.05) end       -- the spec has made the download slow
  local res, derr = core.download(s, { url = link, path = out .. "/devices.csv" })
  say("returned", tostring(res), derr and derr.code or "")
elseif what == "ignored-after-call" then                       -- LuaJIT: ignore SIGTERM between two calls
  assert(core.call(s, req))
  local ffi = require("ffi")
  ffi.cdef("typedef void (*tciot_handler)(int); tciot_handler signal(int, tciot_handler);")
  ffi.C.signal(15, ffi.cast("tciot_handler", 1))               -- SIG_IGN
  say("ignoring")
  local res, err = core.call(s, req)
  say("returned", tostring(res and res.BatchCnt), err and err.code or "")
elseif what == "sleep" or what == "trap-sleep" then
  local ok, err = core.sleep(60, true)
  say("returned", tostring(ok), err and err.code or "", tostring(err and err.signal))
end
if trap then
  local ok, err = core.sleep(30, false)                       -- a signal already arrived: at once
  say("sleep-after", tostring(ok), err and err.code or "")
  local res, cerr = core.call(s, req)
  say("call-after", tostring(res), cerr and cerr.code or "", tostring(cerr and cerr.sent))
end
s:close()
say("done")
]]

describe("signals", function()
  local emu, dir, script

  setup(function()
    emu = emulator.start{ fixture = { rate_limit = 1000000 } }
    dir = util.tmpdir()
    script = dir .. "/child.lua"
    util.write_file(script, CHILD)
    util.check_output("mkdir " .. util.shell_quote(dir .. "/out"))
  end)
  teardown(function()
    emu:stop()
    util.rm_rf(dir)
  end)
  before_each(function() emu:reset() end)

  -- Starts the child in the background; returns its pid and the file its output (and exit status) go to.
  local function spawn(what)
    local out = dir .. "/" .. what .. ".out"
    os.remove(out)
    util.check_output("cd " .. util.shell_quote(util.ROOT) .. " && (" .. util.lua_command(script,
      { what, emu.url, emu.secret_id, emu.secret_key, dir .. "/out" }) .. " > " .. util.shell_quote(out)
      .. " 2>&1; echo \"exit=$?\" >> " .. util.shell_quote(out) .. ") > /dev/null 2>&1 &")
    local pid = util.wait_for("the child's pid", function()
      return (util.read_file(out) or ""):match("pid (%d+)")
    end)
    return pid, out
  end

  -- Signals pid and waits for its exit; returns the output and the seconds it took.
  local function interrupt(pid, out, signal)
    local started = core.now()
    util.check_output("kill -" .. signal .. " " .. pid)
    local text = util.wait_for("the child to end", function()
      local t = util.read_file(out) or ""
      return t:find("exit=%d+") and t
    end, 20)
    return text, core.now() - started
  end

  -- The interpreter's own SIGINT handling ended the child promptly, before it printed `not_reached`.
  local function assert_interpreter_interrupted(text, took, not_reached)
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(text:find("interrupted!", 1, true), text)
    assert.falsy(text:find(not_reached, 1, true), text)
    assert.truthy(text:find("exit=1\n", 1, true), text)
  end

  it("SIGINT ends a slow call within a second, with the interpreter's own interruption", function()
    emu:fault{ kind = "delay", seconds = 20 }
    local pid, out = spawn("call")
    util.wait_for("the request to arrive", function() return emu:counters().requests >= 1 end)
    local text, took = interrupt(pid, out, "INT")
    assert_interpreter_interrupted(text, took, "done")
  end)

  it("SIGTERM ends a slow call, then the process as SIGTERM would", function()
    emu:fault{ kind = "delay", seconds = 20 }
    local pid, out = spawn("call")
    util.wait_for("the request to arrive", function() return emu:counters().requests >= 1 end)
    local text, took = interrupt(pid, out, "TERM")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(text:find("exit=143", 1, true), text)   -- 128 + 15: killed by the signal it was sent
  end)

  it("SIGINT ends a download, leaving no file and no temporary behind", function()
    emu:fault{ kind = "delay", seconds = 20, action = "_download" }
    local pid, out = spawn("download")
    util.wait_for("the download to start", function()
      return (util.read_file(out) or ""):find("downloading", 1, true) and #util.listing(dir .. "/out") > 0
    end)
    local temporaries = util.listing(dir .. "/out")
    local text, took = interrupt(pid, out, "INT")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(temporaries[1]:find("^%.tciot%-"), temporaries[1])   -- there was one while it ran
    assert.truthy(text:find("interrupted!", 1, true), text)
    assert.are.same({}, util.listing(dir .. "/out"))
  end)

  -- The handler stays installed after an operation (signals.c): outside one, the signal must reach what was
  -- there before, as if the core had never run.
  it("after a call, SIGINT reaches the interpreter's own handler", function()
    local pid, out = spawn("after-call")
    util.wait_for("the call to end", function() return (util.read_file(out) or ""):find("called", 1, true) end)
    local text, took = interrupt(pid, out, "INT")
    assert_interpreter_interrupted(text, took, "spun")
  end)

  it("after a call, SIGTERM ends the process as SIGTERM would", function()
    local pid, out = spawn("after-call")
    util.wait_for("the call to end", function() return (util.read_file(out) or ""):find("called", 1, true) end)
    local text, took = interrupt(pid, out, "TERM")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.falsy(text:find("spun", 1, true), text)
    assert.truthy(text:find("exit=143", 1, true), text)
  end)

  -- The interpreter's SIGINT handler sets SIGINT back to the default: the next operation must put ours back,
  -- or a second SIGINT would kill the process in the middle of it, leaving its temporary file behind.
  it("an operation after an interruption the interpreter handled cleans up on SIGINT again", function()
    local pid, out = spawn("interrupted-between-calls")
    util.wait_for("the call to end", function() return (util.read_file(out) or ""):find("called", 1, true) end)
    util.check_output("kill -INT " .. pid)
    util.wait_for("the interruption", function()
      return (util.read_file(out) or ""):find("caught false interrupted!", 1, true)
    end)
    emu:fault{ kind = "delay", seconds = 20, action = "_download" }
    util.write_file(dir .. "/out.go", "")
    util.wait_for("the download to start", function() return #util.listing(dir .. "/out") > 0 end)
    local text, took = interrupt(pid, out, "INT")
    os.remove(dir .. "/out.go")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.falsy(text:find("returned", 1, true), text)
    assert.truthy(text:find("exit=130", 1, true), text)      -- the default action the interpreter asked for
    assert.are.same({}, util.listing(dir .. "/out"))
  end)

  it("a signal the program ignores since the last call stays ignored during the next", function()
    if not jit then
      return pending("needs LuaJIT's FFI to set SIG_IGN from Lua")
    end
    emu:fault{ kind = "delay", seconds = 1.5, count = 2 }
    local pid, out = spawn("ignored-after-call")
    util.wait_for("the second request", function()
      return (util.read_file(out) or ""):find("ignoring", 1, true) and emu:counters().requests >= 2
    end)
    local text = interrupt(pid, out, "TERM")
    assert.truthy(text:find("returned 3 \n"), text)                 -- the call ran to its end
    assert.truthy(text:find("done\nexit=0"), text)
  end)

  it("SIGINT ends core.sleep within a second", function()
    local pid, out = spawn("sleep")
    core.sleep(0.3)
    local text, took = interrupt(pid, out, "INT")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(text:find("interrupted!", 1, true), text)
  end)

  it("with trap_signals, the call returns ClientError.Interrupted with the signal, as does all after", function()
    emu:fault{ kind = "delay", seconds = 20 }
    local pid, out = spawn("trap-call")
    util.wait_for("the request to arrive", function() return emu:counters().requests >= 1 end)
    local text, took = interrupt(pid, out, "INT")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(text:find("returned nil ClientError.Interrupted 2 2\n", 1, true), text)
    assert.truthy(text:find("sleep-after nil ClientError.Interrupted\n", 1, true), text)
    assert.truthy(text:find("call-after nil ClientError.Interrupted false\n", 1, true), text)
    assert.truthy(text:find("done\nexit=0", 1, true), text)
    assert.are.equal(1, emu:counters().requests)             -- nothing was sent after the signal
  end)

  it("with trap_signals, SIGTERM ends a sleep with signal 15", function()
    local pid, out = spawn("trap-sleep")
    core.sleep(0.3)
    local text, took = interrupt(pid, out, "TERM")
    assert.is_true(took < LIMIT, "took " .. took .. " s")
    assert.truthy(text:find("returned nil ClientError.Interrupted 15\n", 1, true), text)
    assert.truthy(text:find("exit=0", 1, true), text)
  end)

  it("a session that is not interruptible leaves the signal to the host at once (nginx)", function()
    -- In this process: a handler of ours passes signals on outside an interruptible operation.
    local s = assert(core.new_session{ scheme = "http", host = "127.0.0.1", port = util.dead_port(),
      region = "ap-guangzhou" })
    local _, err = core.call(s, { secret_id = "AKID", secret_key = "K", action = "A", version = "V" })
    s:close()
    assert.are.equal("ClientError.NetworkError", err.code)
    assert.is_nil(core.interrupted())
  end)
end)

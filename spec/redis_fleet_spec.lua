-- A fleet on one Redis store against the emulator, which refuses the 21st request in any sliding second
-- (RequestLimitExceeded) and counts what arrived: every figure asserted here is the server's count.
-- Plain-Lua members are processes of the interpreter running the specs (spec/helpers/redis_worker.lua);
-- nginx runs LuaJIT whichever pass this is.
local cjson = require("cjson")
local core = require("tencentcloud.iotexplorer.core")
local socket = require("socket")
local redis = require("helpers.redis")
local emulator = require("helpers.emulator")
local nginx = require("helpers.nginx")
local util = require("helpers.util")

local WORKER = util.ROOT .. "/spec/helpers/redis_worker.lua"

-- The members' rate_limit: the default. Its spacing leaves 41 ms of jitter before the server could count 21
-- in a second; a member that wakes more than limiter.MAX_LATE after its slot takes the next one instead of
-- sending late, so a loaded machine costs the fleet throughput rather than refusals.
local RATE = 20

describe("a fleet on one Redis store", function()
  local srv, emu

  setup(function()
    srv = redis.start()
    emu = emulator.start()
  end)

  teardown(function()
    if emu then emu:stop() end
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:reset()
    srv:command("FLUSHALL")
  end)

  -- Starts n plain-Lua members; returns a function that waits for them and returns their counts.
  local function start_members(n, o)
    local pipes = {}
    for i = 1, n do
      local cmd = util.lua_command(WORKER, { o.url or srv.url, emu.url, emu.secret_id, emu.secret_key,
        string.format("%.6f", o.start_at), string.format("%.6f", o.stop_at), tostring(o.fleet_size or n),
        o.on_failure or "local", tostring(o.max_attempts or 1), tostring(RATE) })
      pipes[i] = assert(io.popen("cd " .. util.shell_quote(util.ROOT) .. " && " .. cmd .. " 2>&1"))
    end
    return function()
      local out = {}
      for i, p in ipairs(pipes) do
        local text = p:read("*a")
        p:close()
        local ok, counts = pcall(cjson.decode, text:match("[^\n]*\n?$") or "")
        assert(ok and type(counts) == "table", "member " .. i .. " printed: " .. text)
        out[i] = counts
      end
      return out
    end
  end

  local function total(members, field)
    local n = 0
    for _, m in ipairs(members) do n = n + (m[field] or 0) end
    return n
  end

  local function describe_failures(members)
    local parts = {}
    for i, m in ipairs(members) do
      if m.failed > 0 then parts[#parts + 1] = i .. ": " .. m.failed .. " failed, last " .. tostring(m.last_error) end
    end
    return table.concat(parts, "; ")
  end

  it("three processes and an nginx with two workers stay under 20/s together, and use at least 18/s", function()
    local ng = nginx.start{ workers = 2, template = util.ROOT .. "/spec/helpers/redis_nginx.conf.in", vars = {
      REDIS_URL = srv.url, FLEET_SIZE = 5, EMULATOR = emu.url, SECRET_ID = emu.secret_id,
      SECRET_KEY = emu.secret_key, MAX_ATTEMPTS = 1, RATE_LIMIT = RATE } }
    local ok, e = pcall(function()
      local seconds = 10
      local start_at = core.now() + 1.5 -- time for the interpreters to start
      local stop_at = start_at + seconds
      local wait = start_members(3, { start_at = start_at, stop_at = stop_at, fleet_size = 5 })
      local status, _, body = ng:get(string.format("/go?start=%.6f&stop=%.6f&callers=2", start_at, stop_at))
      assert.equal(200, status, body)
      local members = wait()
      local workers
      util.wait_for("both nginx workers' results", function()
        local _, _, b = ng:get("/results")
        workers = cjson.decode(b or "[]")
        return #workers == 2
      end, 15)
      for _, w in ipairs(workers) do members[#members + 1] = w end
      local finished = 0
      for _, m in ipairs(members) do finished = math.max(finished, m.finished_at) end

      local counters = emu:counters()
      local sent = total(members, "ok") + total(members, "failed")
      assert.equal(0, counters.rate_limited, "refused by the server")
      assert.is_true(counters.max_per_second <= 20, "server saw " .. counters.max_per_second .. " in a second")
      assert.equal(0, total(members, "failed"), describe_failures(members))
      assert.equal(sent, counters.by_action.DescribeBatchProduction)
      for i, m in ipairs(members) do assert.is_true(m.ok > 10, "member " .. i .. " made " .. m.ok .. " calls") end
      -- The last calls end a little after stop_at; count the whole span.
      local rate = counters.by_action.DescribeBatchProduction / (finished - start_at)
      assert.is_true(rate >= 18, "fleet rate " .. rate .. "/s")
      -- where nginx has no cosockets (init_worker) the store used hiredis, once in each worker
      assert.equal("ok ok", (select(3, ng:get("/init_worker")):gsub("%s+$", "")))
      assert.equal("ok\n", select(3, ng:get("/check")))
      assert.same({}, ng:serious_errors())
    end)
    ng:stop()
    assert(ok, e)
  end)

  it("loses no call when Redis is killed mid-run, and is back on the shared limit a second after it returns",
    function()
      local start_at = core.now() + 1
      local stop_at = start_at + 8
      -- default retries: a request refused while the fleet moves between limits is retried, not failed
      local wait = start_members(3, { start_at = start_at, stop_at = stop_at, max_attempts = 3 })
      local function sent() return emu:counters().by_action.DescribeBatchProduction or 0 end
      socket.sleep(start_at + 2 - core.now())
      srv:kill()
      local at_kill = sent()
      socket.sleep(1.5)
      local at_restart = sent()
      srv:restart()
      socket.sleep(1)
      -- From here on (one second after the restart) the server's counts must show the shared limit again.
      if os.getenv("TCIOT_DEBUG") then
        local early = emu:counters()
        print("before reset", early.rate_limited, early.max_per_second)
      end
      emu:reset()
      local reset_at = core.now()
      local members = wait()
      local counters = emu:counters()
      assert.equal(0, total(members, "failed"), describe_failures(members))
      assert.equal(0, counters.rate_limited, "refused after the restart")
      assert.is_true(counters.max_per_second <= 20, "server saw " .. counters.max_per_second .. " in a second")
      -- Every member noticed the outage once and its end once.
      for i, m in ipairs(members) do
        assert.same({ "rate_limit_store_down", "rate_limit_store_up" }, m.store_events,
          "member " .. i .. ": " .. table.concat(m.store_events, ", ") .. "; " .. table.concat(m.store_errors, ", "))
      end
      -- The outage did not stop the fleet (three local shares of 6/s), nor the shared limit after it.
      assert.is_true(at_restart - at_kill >= 1.5 * 18 * 0.6, "calls during the outage: " .. (at_restart - at_kill))
      local after = counters.by_action.DescribeBatchProduction
      assert.is_true(after >= (stop_at - reset_at) * 18 * 0.8, "calls after the reset: " .. after)
    end)

  it("fails no call when the script is flushed mid-run", function()
    local start_at = core.now() + 1
    local stop_at = start_at + 3
    local wait = start_members(2, { start_at = start_at, stop_at = stop_at })
    for _ = 1, 5 do
      socket.sleep(math.max(0, start_at - core.now()) + 0.5)
      assert.equal("OK", srv:command("SCRIPT", "FLUSH"))
    end
    local members = wait()
    local counters = emu:counters()
    assert.equal(0, total(members, "failed"), describe_failures(members))
    assert.equal(0, counters.rate_limited)
    assert.is_true(counters.max_per_second <= 20)
    -- a loaded machine may let a reservation time out (an outage of its own); a flushed script is none
    for _, m in ipairs(members) do
      for _, why in ipairs(m.store_errors) do assert.is_nil(why:find("NOSCRIPT", 1, true), why) end
    end
  end)
end)

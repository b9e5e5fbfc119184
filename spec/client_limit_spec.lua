-- The client-side rate limit against the emulator, which refuses the 21st request
-- in any sliding second per secret id (RequestLimitExceeded) and counts arrivals.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local limiter = require("tencentcloud.iotexplorer.limiter")
local emulator = require("helpers.emulator")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }

describe("client rate limit", function()
  local emu

  local function new(o)
    o = o or {}
    o.region = "ap-guangzhou"
    o.endpoint = emu.url
    o.secret_id, o.secret_key = emu.secret_id, emu.secret_key
    o.metadata_endpoint = false
    return assert(iot.new(o))
  end

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:reset()
  end)

  -- Real time on a shared machine: a request can leave (or be read by the emulator) tens of milliseconds late
  -- while the next ones are on time. Where a spec asserts that the server refused nothing at its strict
  -- limit, the client runs one request per second below it, so 21 requests span 1.1 s and only a delay of
  -- 96 ms (41 ms at the default 20/s) could put 21 into one second; the exact bound of the default spacing is
  -- proven on a fake clock in limiter_spec. Every count asserted is the server's; elapsed times are bounded
  -- below exactly (the spacing never lets requests out sooner) and above loosely (a loaded machine is slow).
  local function interval(rate) return 1 / (rate * limiter.MARGIN) end

  it("makes 100 back-to-back calls that the server never refuses, evenly spaced", function()
    local c = new{ rate_limit = 19, max_attempts = 1 } -- a refusal would show, not be retried away
    local started = core.now()
    for i = 1, 100 do
      local res, err = c:describe_batch_production(DESCRIBE)
      assert(res, "call " .. i .. ": " .. tostring(err))
    end
    local elapsed = core.now() - started
    local counters = emu:counters()
    assert.equal(100, counters.by_action.DescribeBatchProduction)
    assert.equal(0, counters.rate_limited)
    assert.is_true(counters.max_per_second <= 20, "max per second " .. counters.max_per_second)
    assert.is_true(elapsed >= 99 * interval(19), "too fast: " .. elapsed)
    assert.is_true(elapsed < 99 * interval(19) * 1.3 + 1, "too slow: " .. elapsed)
    c:close()
  end)

  it("is what keeps the emulator from refusing: without it, a loop is refused", function()
    emu:set{ rate_limit = 5 } -- a loop of 40 calls passes 5 in a second even on a slow machine
    local ok, e = pcall(function()
      local c = new{ rate_limit = false, max_attempts = 1 }
      local refused = 0
      for _ = 1, 40 do
        local _, err = c:describe_batch_production(DESCRIBE)
        if err and err.code == "RequestLimitExceeded" then refused = refused + 1 end
      end
      assert.is_true(refused > 0)
      assert.equal(refused, emu:counters().rate_limited)
      c:close()
    end)
    emu:set{ rate_limit = 20 }
    assert(ok, e)
  end)

  it("spaces requests evenly, with no burst at the start", function()
    emu:set{ rate_limit = 10 }
    local ok, e = pcall(function()
      local c = new{ rate_limit = 9, max_attempts = 1 }
      local started = core.now()
      for i = 1, 12 do
        local res, err = c:describe_batch_production(DESCRIBE)
        assert(res, "call " .. i .. ": " .. tostring(err))
      end
      local elapsed = core.now() - started
      local counters = emu:counters()
      assert.equal(0, counters.rate_limited) -- a burst of 11 would be refused
      assert.is_true(counters.max_per_second <= 10)
      assert.is_true(elapsed >= 11 * interval(9), "too fast: " .. elapsed)
      c:close()
    end)
    emu:set{ rate_limit = 20 }
    assert(ok, e)
  end)

  it("shares one budget between clients on one store", function()
    local store = limiter.memory_store()
    local a = new{ rate_limit_store = store, rate_limit_key = "account", rate_limit = 19, max_attempts = 1 }
    local b = new{ rate_limit_store = store, rate_limit_key = "account", rate_limit = 19, max_attempts = 1 }
    local started = core.now()
    for i = 1, 25 do
      assert(a:describe_batch_production(DESCRIBE), "a, call " .. i)
      assert(b:describe_batch_production(DESCRIBE), "b, call " .. i)
    end
    local elapsed = core.now() - started
    local counters = emu:counters()
    assert.equal(50, counters.by_action.DescribeBatchProduction)
    assert.equal(0, counters.rate_limited)
    assert.is_true(counters.max_per_second <= 20)
    assert.is_true(elapsed >= 49 * interval(19), "elapsed " .. elapsed)
    a:close()
    b:close()
  end)

  it("keeps one budget per action", function()
    local waits = {}
    local c = new{ rate_limit = 1, logger = function(r) waits[#waits + 1] = r.rate_wait end }
    assert(c:describe_batch_production(DESCRIBE))
    assert(c:call("GetBatchProductionsList", { ProjectId = "PROJECT0001" }))
    assert(c:describe_batch_production(DESCRIBE))
    assert.equal(0, waits[1])
    assert.equal(0, waits[2]) -- another action: its own budget
    assert.is_true(waits[3] > 0.5 and waits[3] <= interval(1) + 1e-9, "wait " .. waits[3])
    assert.equal(3, emu:counters().requests)
    c:close()
  end)

  it("sleeps with the sleep function it is given, for exactly the limiter's waits", function()
    local slept, waits = {}, {}
    -- 0.52 s apart: each call's own time (even on a loaded machine) leaves a wait
    local c = new{ rate_limit = 2, sleep = function(s) slept[#slept + 1] = s; core.sleep(s) end,
      logger = function(r) if r.rate_wait > 0 then waits[#waits + 1] = r.rate_wait end end }
    for _ = 1, 3 do assert(c:describe_batch_production(DESCRIBE)) end
    -- one sleep per wait (more only where a loaded machine woke it too late and it took the next slot)
    assert.equal(2, #waits)
    assert.is_true(#slept >= 2)
    local sum_slept, sum_waits = 0, 0
    for _, s in ipairs(slept) do sum_slept = sum_slept + s end
    for _, w in ipairs(waits) do sum_waits = sum_waits + w end
    assert.near(sum_waits, sum_slept, 1e-9)
    for _, w in ipairs(waits) do assert.is_true(w > 0, "wait " .. w) end
    assert.equal(3, emu:counters().requests)
    c:close()
  end)
end)

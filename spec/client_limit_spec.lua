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

  it("makes 100 back-to-back calls with no RequestLimitExceeded, within 5% of 20/s", function()
    local c = new{ max_attempts = 1 } -- a refusal would show, not be retried away
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
    local rate = 99 / elapsed
    assert.is_true(rate <= 20 and rate >= 19, "rate " .. rate)
    c:close()
  end)

  it("is what keeps the emulator from refusing: without it, a loop is refused", function()
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

  it("spaces requests evenly, with no burst at the start", function()
    -- send times: when each attempt's request started, from the logger
    local times = {}
    local c = new{ rate_limit = 10, logger = function(r) times[#times + 1] = core.now() - r.duration end }
    for _ = 1, 6 do
      assert(c:describe_batch_production(DESCRIBE))
    end
    assert.equal(6, #times)
    for i = 2, 6 do
      local gap = times[i] - times[i - 1]
      assert.is_true(gap >= 0.1 and gap < 0.13, "gap " .. gap)
    end
    c:close()
  end)

  it("shares one budget between clients on one store", function()
    local store = limiter.memory_store()
    local a = new{ rate_limit_store = store, rate_limit_key = "account", max_attempts = 1 }
    local b = new{ rate_limit_store = store, rate_limit_key = "account", max_attempts = 1 }
    local started = core.now()
    for _ = 1, 25 do
      assert(a:describe_batch_production(DESCRIBE))
      assert(b:describe_batch_production(DESCRIBE))
    end
    local elapsed = core.now() - started
    local counters = emu:counters()
    assert.equal(0, counters.rate_limited)
    assert.is_true(counters.max_per_second <= 20)
    assert.is_true(elapsed >= 49 / 20, "elapsed " .. elapsed)
    a:close()
    b:close()
  end)

  it("sleeps with the sleep function it is given", function()
    local slept = {}
    local c = new{ rate_limit = 20, sleep = function(s) slept[#slept + 1] = s; core.sleep(s) end }
    for _ = 1, 3 do assert(c:describe_batch_production(DESCRIBE)) end
    assert.equal(2, #slept)
    assert.is_true(slept[1] > 0.04 and slept[1] <= 0.053)
    c:close()
  end)
end)

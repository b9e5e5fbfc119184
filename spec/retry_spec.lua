-- The retry policy on a fake clock: no I/O, every sleep recorded.
local retry = require("tencentcloud.iotexplorer.retry")
local errors = require("tencentcloud.iotexplorer.errors")
local util = require("helpers.util")

-- A clock that only moves when someone sleeps or an attempt "takes" time.
local function fake_clock() return util.fake_clock(100) end

local function failing(code, clock, cost)
  return function()
    if clock and cost then clock.t = clock.t + cost end
    return nil, errors.new(code, "injected")
  end
end

local function always(how) return function() return how end end

describe("retry", function()
  it("returns the first success without sleeping", function()
    local c = fake_clock()
    local res, err, n = retry.run{
      attempt = function() return { ok = true } end, decide = always("backoff"),
      now = c.now, sleep = c.sleep, random = function() return 0.5 end,
    }
    assert.same({ ok = true }, res)
    assert.is_nil(err)
    assert.equal(1, n)
    assert.same({}, c.sleeps)
  end)

  it("stops at max_attempts and never sleeps after the last attempt", function()
    local c = fake_clock()
    local calls = 0
    local res, err, n = retry.run{
      attempt = function(i) calls = calls + 1; assert.equal(calls, i); return nil, errors.new("InternalError", "x") end,
      decide = always("backoff"), max_attempts = 4, base = 0.1, cap = 5,
      now = c.now, sleep = c.sleep, random = function() return 0.999999 end,
    }
    assert.is_nil(res)
    assert.equal("InternalError", err.code)
    assert.equal(4, n)
    assert.equal(4, calls)
    assert.equal(3, #c.sleeps)
    -- full jitter with random ~1: close to base * 2^(k-1)
    assert.near(0.1, c.sleeps[1], 1e-4)
    assert.near(0.2, c.sleeps[2], 1e-4)
    assert.near(0.4, c.sleeps[3], 1e-4)
  end)

  it("caps the backoff and spreads it with full jitter", function()
    assert.near(5, retry.backoff(10, 0.1, 5, function() return 0.9999999 end), 1e-5)
    assert.equal(0, retry.backoff(3, 0.1, 5, function() return 0 end))
    assert.near(0.2, retry.backoff(3, 0.1, 5, function() return 0.5 end), 1e-9)
    -- with math.random every value stays inside [0, ceiling]
    for _ = 1, 200 do
      local s = retry.backoff(4, 0.1, 5)
      assert.is_true(s >= 0 and s <= 0.8)
    end
  end)

  it("does not retry when the decision says no", function()
    local c = fake_clock()
    local _, err, n = retry.run{
      attempt = failing("ResourceNotFound"), decide = always(false), max_attempts = 5,
      now = c.now, sleep = c.sleep,
    }
    assert.equal("ResourceNotFound", err.code)
    assert.equal(1, n)
    assert.same({}, c.sleeps)
  end)

  it("retries 'now' at once without using up an attempt", function()
    local c = fake_clock()
    local seen = {}
    local _, err, n = retry.run{
      attempt = function(i)
        seen[#seen + 1] = i
        return nil, errors.new(i == 1 and "AuthFailure.SignatureExpire" or "InternalError", "x")
      end,
      decide = function(e) return e.code == "AuthFailure.SignatureExpire" and "now" or "backoff" end,
      max_attempts = 2, base = 0.01, now = c.now, sleep = c.sleep, random = function() return 1 end,
    }
    assert.equal("InternalError", err.code)
    assert.equal(3, n)              -- the immediate retry plus two counted attempts
    assert.same({ 1, 2, 3 }, seen)
    assert.equal(1, #c.sleeps)      -- no sleep before the immediate retry
  end)

  it("bounds everything with the deadline, sleeps included", function()
    local c = fake_clock()
    local start = c.t
    local remaining_seen = {}
    local _, err, n = retry.run{
      attempt = function(_, remaining)
        remaining_seen[#remaining_seen + 1] = remaining
        c.t = c.t + math.min(0.3, remaining) -- the client bounds each attempt by what is left
        return nil, errors.new("InternalError", "slow", { request_id = "last-rid" })
      end,
      decide = always("backoff"), max_attempts = 100, base = 0.2, cap = 0.2, deadline = 1.0,
      now = c.now, sleep = c.sleep, random = function() return 0.999 end,
    }
    assert.equal("ClientError.Timeout", err.code)
    assert.is_true(err.deadline)
    assert.equal("InternalError", err.cause.code)
    assert.matches("deadline of 1s passed after " .. n .. " attempt", err.message)
    assert.matches("last error: InternalError: slow", err.message)
    assert.is_true(c.t - start <= 1.0 + 1e-9)
    -- 0.3 + 0.2 + 0.3 + 0.2 = 1.0: the third attempt gets the last ~0.0004 s, then
    -- another sleep would outlast the deadline
    assert.equal(3, n)
    assert.near(1.0, remaining_seen[1], 1e-9)
    assert.near(0.5, remaining_seen[2], 1e-3)
    assert.is_true(remaining_seen[3] < 0.01)
  end)

  it("reports a deadline that passed during an attempt", function()
    local c = fake_clock()
    local _, err, n = retry.run{
      attempt = function() c.t = c.t + 2; return nil, errors.new("ClientError.Timeout", "slow", { sent = true }) end,
      decide = always("backoff"), max_attempts = 3, base = 0.01, deadline = 1,
      now = c.now, sleep = c.sleep, random = function() return 0 end,
    }
    assert.equal("ClientError.Timeout", err.code)
    assert.is_true(err.deadline)
    assert.is_true(err.sent)
    assert.equal(1, n)
  end)

  it("gives the last error, not a timeout, when attempts run out before the deadline", function()
    local c = fake_clock()
    local _, err, n = retry.run{
      attempt = failing("RequestLimitExceeded", c, 0.01), decide = always("backoff"), max_attempts = 3,
      base = 0.01, deadline = 10, now = c.now, sleep = c.sleep, random = function() return 0.5 end,
    }
    assert.equal("RequestLimitExceeded", err.code)
    assert.equal(3, n)
    assert.equal(2, #c.sleeps)
  end)
end)

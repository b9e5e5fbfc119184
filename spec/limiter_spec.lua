-- The rate limiter on a fake clock, then on the core's real monotonic clock.
local limiter = require("tencentcloud.iotexplorer.limiter")
local util = require("helpers.util")

local function fake_clock() return util.fake_clock(1000) end

-- The most send times that fall in any window [t, t + 1).
local function max_in_window(times, width)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= width do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

describe("limiter", function()
  it("lets the first request go at once and spaces the rest evenly", function()
    local c = fake_clock()
    local l = limiter.new{ rate = 20, now = c.now, sleep = c.sleep }
    assert.equal(0, l:acquire())
    local w = l:acquire()
    assert.near(1 / (20 * limiter.MARGIN), w, 1e-9)
    assert.is_true(w > 0.05) -- a margin under the limit
  end)

  it("never sends more than the limit in any sliding second, and stays within 5% of it", function()
    for _, rate in ipairs({ 20, 5, 1, 7.5 }) do
      local c = fake_clock()
      local l = limiter.new{ rate = rate, now = c.now, sleep = c.sleep }
      local times = {}
      for i = 1, 100 do
        l:acquire()
        times[i] = c.t
        c.t = c.t + 0.001 -- each request takes a little time itself
      end
      assert.is_true(max_in_window(times, 1) <= rate, "rate " .. rate)
      local achieved = 99 / (times[100] - times[1])
      -- a fractional limit allows only its whole part in any one second
      assert.is_true(achieved >= math.floor(rate) * 0.95, "rate " .. rate .. " achieved " .. achieved)
      assert.is_true(achieved <= rate, "rate " .. rate .. " achieved " .. achieved)
    end
  end)

  it("does not save up a burst after an idle spell", function()
    local c = fake_clock()
    local l = limiter.new{ rate = 20, now = c.now, sleep = c.sleep }
    l:acquire()
    c.t = c.t + 60
    assert.equal(0, l:acquire())
    assert.is_true(l:acquire() > 0.05)
  end)

  it("gives up without reserving when the wait would exceed max_wait", function()
    local c = fake_clock()
    local l = limiter.new{ rate = 2, now = c.now, sleep = c.sleep }
    assert.equal(0, l:acquire(0))
    local w, needed = l:acquire(0.1)
    assert.is_nil(w)
    assert.near(1 / (2 * limiter.MARGIN), needed, 1e-9)
    assert.same({}, c.sleeps)
    -- nothing was reserved: the next caller waits the same single interval
    assert.near(needed, l:acquire(), 1e-9)
  end)

  it("shares one budget between limiters on one store and key", function()
    local c = fake_clock()
    local store = limiter.memory_store()
    local a = limiter.new{ rate = 10, store = store, key = "acct", now = c.now, sleep = c.sleep }
    local b = limiter.new{ rate = 10, store = store, key = "acct", now = c.now, sleep = c.sleep }
    local other = limiter.new{ rate = 10, store = store, key = "other", now = c.now, sleep = c.sleep }
    assert.equal(0, a:acquire())
    assert.is_true(b:acquire() > 0.1)
    assert.equal(0, other:acquire()) -- a different key has its own budget
  end)

  it("uses any object with reserve(key, interval, now, max_wait) as its store", function()
    local c = fake_clock()
    local calls = {}
    local store = {
      reserve = function(_, key, interval, now, max_wait)
        calls[#calls + 1] = { key = key, interval = interval, now = now, max_wait = max_wait }
        return 0.25
      end,
    }
    local l = limiter.new{ rate = 4, store = store, key = "k", now = c.now, sleep = c.sleep }
    assert.equal(0.25, l:acquire(3))
    assert.same({ 0.25 }, c.sleeps)
    assert.same({ key = "k", interval = 1 / (4 * limiter.MARGIN), now = 1000, max_wait = 3 }, calls[1])
  end)

  it("waits under the key it is given, and with the sleep it is given", function()
    local c = fake_clock()
    local other = {}
    local l = limiter.new{ rate = 10, now = c.now, sleep = c.sleep }
    assert.equal(0, l:acquire(nil, "acct/DescribeDevice"))
    assert.equal(0, l:acquire(nil, "acct/GetBatchProductionsList")) -- another key: its own budget
    local w = l:acquire(nil, "acct/DescribeDevice", function(s) other[#other + 1] = s end)
    assert.near(1 / (10 * limiter.MARGIN), w, 1e-9)
    assert.same({ w }, other) -- the given sleep, not the limiter's
    assert.same({}, c.sleeps)
  end)

  it("gives up a slot it woke too late for, and takes the next one, so no request follows another too soon",
    function()
      local c = fake_clock()
      local late = { [1] = 0.05, [5] = 0.05, [6] = 0.05, [7] = 0.05, [8] = 0.05 } -- sleeps that overrun
      local n = 0
      local sleep = function(s)
        n = n + 1
        c.sleep(s + (late[n] or 0))
      end
      local l = limiter.new{ rate = 10, now = c.now, sleep = sleep }
      local interval = 1 / (10 * limiter.MARGIN)
      local sends = {}
      for i = 1, 4 do
        assert(l:acquire())
        sends[i] = c.t
      end
      for i = 2, 4 do
        assert.is_true(sends[i] - sends[i - 1] >= interval - 1e-9, "send " .. i .. " too soon")
      end
      -- the second request gave up its slot (one interval after the first) and took the next
      assert.near(sends[1] + 2 * interval, sends[2], 1e-9)
      -- late again and again: after MAX_LATE_RETRIES new slots it sends anyway
      assert(l:acquire())
      assert.equal(4 + 1 + limiter.MAX_LATE_RETRIES, n)
    end)

  it("passes a store's failure on: nothing reserved, no sleep, the store's error", function()
    local c = fake_clock()
    local failure = { code = "ClientError.RateLimiterUnavailable", sent = false }
    local l = limiter.new{ rate = 10, now = c.now, sleep = c.sleep,
      store = { reserve = function() return nil, nil, failure end } }
    local w, needed, err = l:acquire(5, "k")
    assert.is_nil(w)
    assert.is_nil(needed)
    assert.equal(failure, err)
    assert.same({}, c.sleeps)
  end)

  it("keeps the spacing on the core's monotonic clock and real sleeps", function()
    local core = require("tencentcloud.iotexplorer.core")
    local l = limiter.new{ rate = 50, now = core.now, sleep = core.sleep }
    local times = {}
    for i = 1, 30 do
      l:acquire()
      times[i] = core.now()
    end
    assert.is_true(max_in_window(times, 1) <= 50)
    local elapsed = times[30] - times[1]
    assert.is_true(elapsed >= 29 / 50, "too fast: " .. elapsed)
    -- a loaded machine can only make it slower: bounded loosely
    assert.is_true(elapsed < 29 / 50 / limiter.MARGIN + 0.5, "too slow: " .. elapsed)
  end)
end)

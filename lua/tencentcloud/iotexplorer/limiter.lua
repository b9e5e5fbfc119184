-- Client-side rate limit: requests spaced evenly, one every `interval` seconds, so
-- there is never a burst and never more than `rate` in any sliding second.
--
-- The service counts arrivals, not sends, and network jitter can bring two
-- requests closer together on the way. So we aim a little below the limit
-- (MARGIN): at 20/s the spacing is 52 ms instead of 50, and 21 requests need
-- 1.04 s, which tolerates ~40 ms of jitter before the server could see 21 in a
-- second, while still delivering 96% of the limit.
--
-- State lives in a store, so several clients (several nginx workers, several machines) can share one
-- budget. A store is any object with one method:
--
--   store:reserve(key, interval, now, max_wait) -> wait
--                                                -> nil, wait
--                                                -> nil, nil, err
--     Atomically: let slot = max(next[key] or now, now).
--     If slot - now <= max_wait: set next[key] = slot + interval and return
--     slot - now (seconds the caller must wait before sending; 0 = send now).
--     Otherwise reserve nothing and return nil, slot - now.
--     `now` comes from the limiter's clock (monotonic, same on every process of
--     one machine: CLOCK_MONOTONIC). A store may use its own clock instead, as
--     long as every user of one key reads the same one (the Redis store reads the
--     server's TIME, so machines whose clocks differ still agree); the wait it
--     returns is relative either way.
--     nil, nil, err: the store could not decide (e.g. its server is unreachable and
--     it was told not to fall back): nothing was reserved and the caller must not
--     send; err is an error object (errors.lua) with sent = false.
--
-- limiter.memory_store() is the in-process store; ngx.lua has one on ngx.shared.DICT
-- (one nginx), redis_store.lua one on Redis (a fleet).

local limiter = {}

limiter.MARGIN = 0.96

local MemoryStore = {}
MemoryStore.__index = MemoryStore

function limiter.memory_store()
  return setmetatable({ next = {} }, MemoryStore)
end

function MemoryStore:reserve(key, interval, now, max_wait)
  local slot = self.next[key] or now
  if slot < now then
    slot = now
  end
  local wait = slot - now
  if wait > max_wait then
    return nil, wait
  end
  self.next[key] = slot + interval
  return wait
end

local Limiter = {}
Limiter.__index = Limiter

-- o.rate (requests/second, > 0; above 1 rounded down), o.margin (default MARGIN), o.store, o.key,
-- o.now (monotonic seconds), o.sleep(seconds).
function limiter.new(o)
  local margin = o.margin or limiter.MARGIN
  -- "At most 7.5 in any second" means at most 7: round rates above 1 down, or
  -- even spacing at 7.2/s would fit 8 requests into some seconds.
  local rate = o.rate
  if rate >= 1 then
    rate = math.floor(rate)
  end
  return setmetatable({
    rate = rate,
    interval = 1 / (rate * margin),
    store = o.store or limiter.memory_store(),
    key = o.key or "default",
    now = o.now,
    sleep = o.sleep,
  }, Limiter)
end

-- A caller that wakes this much later than its slot (a loaded machine, a GC pause, a slow reply from a
-- shared store) gives the slot up and takes a new one instead of sending late: the slot after it was planned
-- one interval after this one, so a late request would arrive closer to the next than the interval, and a
-- few such requests add up to one too many in some second. Giving a slot up costs throughput, never the
-- limit. At most MAX_LATE_RETRIES times per call, then it sends anyway.
limiter.MAX_LATE = 0.02
limiter.MAX_LATE_RETRIES = 3

-- Waits for this caller's slot under key (default: the limiter's own key), sleeping
-- with sleep (default: the limiter's own; a scheduler passes one that yields).
-- Returns the seconds slept; or nil and the wait that would have been needed when
-- it exceeds what is left of max_wait (nothing is reserved then, so giving up costs
-- the other callers nothing); or nil, nil, err when the store failed (nothing
-- reserved, send nothing).
function Limiter:acquire(max_wait, key, sleep)
  key = key or self.key
  max_wait = max_wait or math.huge
  local started = self.now()
  local slept = 0
  for attempt = 0, limiter.MAX_LATE_RETRIES do
    local asked = self.now()
    local wait, needed, err = self.store:reserve(key, self.interval, asked, max_wait - (asked - started))
    if not wait then
      return nil, needed, err
    end
    if wait > 0 then
      (sleep or self.sleep)(wait)
      slept = slept + wait
    end
    if attempt == limiter.MAX_LATE_RETRIES or self.now() - (asked + wait) <= limiter.MAX_LATE then
      return slept
    end
  end
end

return limiter

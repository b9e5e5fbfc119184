-- Client-side rate limit: requests spaced evenly, one every `interval` seconds, so
-- there is never a burst and never more than `rate` in any sliding second.
--
-- The service counts arrivals, not sends, and network jitter can bring two
-- requests closer together on the way. So we aim a little below the limit
-- (MARGIN): at 20/s the spacing is 52 ms instead of 50, and 21 requests need
-- 1.04 s, which tolerates ~40 ms of jitter before the server could see 21 in a
-- second, while still delivering 96% of the limit.
--
-- State lives in a store, so several clients (or several nginx workers) can share
-- one budget. A store is any object with one method:
--
--   store:reserve(key, interval, now, max_wait) -> wait
--                                                -> nil, wait
--     Atomically: let slot = max(next[key] or now, now).
--     If slot - now <= max_wait: set next[key] = slot + interval and return
--     slot - now (seconds the caller must wait before sending; 0 = send now).
--     Otherwise reserve nothing and return nil, slot - now.
--     `now` comes from the limiter's clock (monotonic, same on every process of
--     one machine: CLOCK_MONOTONIC), so a store need not read a clock itself.
--
-- limiter.memory_store() is the in-process store; a shared-memory store (e.g. on
-- ngx.shared.DICT) only has to make reserve atomic across workers.

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

-- Waits for this caller's slot (with sleep, default the limiter's). Returns the seconds waited, or nil and
-- the wait that would have been needed when it exceeds max_wait (nothing is reserved then,
-- so giving up costs the other callers nothing).
function Limiter:acquire(max_wait, key, sleep)
  local wait, needed = self.store:reserve(key or self.key, self.interval, self.now(), max_wait or math.huge)
  if not wait then
    return nil, needed
  end
  if wait > 0 then
    (sleep or self.sleep)(wait)
  end
  return wait
end

return limiter

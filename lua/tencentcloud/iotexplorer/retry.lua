-- Attempts, full-jitter exponential backoff and a deadline; no I/O of its own.
-- Time and randomness are injected (now, sleep, random) so the policy can be tested
-- without a network and reused inside nginx with ngx.sleep.

local errors = require("tencentcloud.iotexplorer.errors")

local retry = {}

retry.DEFAULT_BASE = 0.1
retry.DEFAULT_CAP = 5
retry.DEFAULT_MAX_ATTEMPTS = 3

-- Full jitter (uniform in [0, min(cap, base * 2^(n-1))]) spreads clients that
-- failed together, so they do not come back together. n is the number of failed
-- attempts so far, starting at 1.
function retry.backoff(n, base, cap, random)
  local ceiling = math.min(cap, base * 2 ^ (n - 1))
  return (random or math.random)() * ceiling
end

-- Jitter needs randomness that differs between processes: LuaJIT's math.random starts from the same seed
-- everywhere, so nginx workers would back off in step. A Park-Miller generator (exact in doubles, the same on
-- 5.1 and 5.4). seed() -> key, value: the generator reseeds from value whenever key changes (inside nginx the
-- key is the worker's pid, so workers forked from one master part ways).
function retry.new_random(seed)
  local state, seeded_for
  return function()
    local key, value = seed()
    if key ~= seeded_for or not state then
      seeded_for = key
      state = math.floor(value) % 2147483646 + 1
    end
    state = (state * 48271) % 2147483647
    return (state - 1) / 2147483646
  end
end

-- retry.run(o) calls o.attempt until it succeeds or the policy says stop.
--   o.attempt(n, remaining, o) -> res | nil, err   n counts from 1; remaining is the
--                               time left before the deadline (nil without one)
--   o.decide(err, n, o) -> "backoff" | "now" | false
--                               "now" retries at once and does not use up an attempt
--                               of max_attempts (used for clock-skew repair)
--   o.max_attempts, o.base, o.cap, o.deadline (seconds from now, or nil)
--   o.now (monotonic seconds), o.sleep(seconds), o.random() in [0, 1)
-- Both also get o itself, so a caller can keep its per-call state there instead of in closures.
-- Returns res, nil, attempts or nil, err, attempts. Never sleeps after the last
-- attempt, and never starts a sleep that would outlast the deadline.
function retry.run(o)
  local now, sleep = o.now, o.sleep
  local max_attempts = o.max_attempts or retry.DEFAULT_MAX_ATTEMPTS
  local base = o.base or retry.DEFAULT_BASE
  local cap = o.cap or retry.DEFAULT_CAP
  local deadline_at = o.deadline and (now() + o.deadline)
  local n, counted, last = 0, 0, nil

  while true do
    local remaining
    if deadline_at then
      remaining = deadline_at - now()
      if remaining <= 0 then
        return nil, errors.deadline(o.deadline, string.format("after %d attempt(s)", n), last), n
      end
    end

    n = n + 1
    counted = counted + 1
    local res, err = o.attempt(n, remaining, o)
    if res ~= nil then
      return res, nil, n
    end
    last = err

    local how = o.decide(err, n, o)
    if how == "now" then
      counted = counted - 1
    elseif how and counted < max_attempts then
      local pause = retry.backoff(counted, base, cap, o.random)
      if deadline_at and pause >= deadline_at - now() then
        -- Sleeping would only wake us after the deadline: stop now.
        return nil, errors.deadline(o.deadline, string.format("after %d attempt(s)", n), last), n
      end
      if pause > 0 then
        sleep(pause)
      end
    else
      return nil, err, n
    end
  end
end

return retry

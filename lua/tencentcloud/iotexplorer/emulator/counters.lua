-- What the emulator counted, for specs to assert on, and the service's rate limit: a strict sliding
-- 1-second window per action and SecretId, on the real clock (the skewable clock only moves time-stamps).
local socket = require("socket")

local M = {}
M.__index = M

local function fresh()
  return {
    requests = 0, by_action = {}, rate_limited = 0, auth_failures = 0, last_headers = {},
    errors = {}, faults_applied = 0, downloads = 0,
    connections = 0,               -- TCP connections accepted (the control endpoint's too)
    in_flight = 0,                 -- API requests read and not yet answered
    max_in_flight = 0,
    max_per_second = 0,            -- the highest count in any sliding second, over every action and SecretId
    max_per_second_by_action = {}, -- the same, per action
    sts = { by_action = {}, issued = 0, revoked = 0 },
  }
end

function M.new()
  return setmetatable({ c = fresh(), windows = {} }, M)
end

-- Keeps what lasts across a reset: the connections still open and the requests still in flight.
function M:reset()
  local in_flight = self.c.in_flight
  self.c = fresh()
  self.c.in_flight, self.c.max_in_flight = in_flight, in_flight
  self.windows = {}
end

function M:request(action, headers)
  local c = self.c
  c.requests = c.requests + 1
  c.by_action[action] = (c.by_action[action] or 0) + 1
  c.last_headers = headers
end

function M:begin()
  local c = self.c
  c.in_flight = c.in_flight + 1
  if c.in_flight > c.max_in_flight then c.max_in_flight = c.in_flight end
end

function M:finish()
  self.c.in_flight = math.max(0, self.c.in_flight - 1)
end

function M:error(code)
  self.c.errors[code] = (self.c.errors[code] or 0) + 1
end

function M:bump(name)
  self.c[name] = self.c[name] + 1
end

-- Records one request of `action` by `secret_id` and returns true when it is within `limit` per second
-- (0 or less: no limit). Every request that reached this point counts, the refused ones too: the service
-- saw them.
function M:admit(secret_id, action, limit)
  local key = secret_id .. "\0" .. action
  local now = socket.gettime()
  local kept = {}
  for _, t in ipairs(self.windows[key] or {}) do
    if t > now - 1 then kept[#kept + 1] = t end
  end
  kept[#kept + 1] = now
  self.windows[key] = kept
  local c, n = self.c, #kept
  if n > c.max_per_second then c.max_per_second = n end
  if n > (c.max_per_second_by_action[action] or 0) then c.max_per_second_by_action[action] = n end
  if limit > 0 and n > limit then
    c.rate_limited = c.rate_limited + 1
    return false
  end
  return true
end

return M

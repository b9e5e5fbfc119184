-- Spec helper: recognisable credentials, and a watcher that fails a spec when either the secret key or the
-- token shows up anywhere a caller could see it.
--
--   local secrets = require("helpers.secrets")
--   local emu = emulator.start{ fixture = secrets.fixture() }   -- the emulator knows our credentials
--   local watch = secrets.watch()
--   local client = iot.new{ ..., secret_id = secrets.SECRET_ID, secret_key = secrets.SECRET_KEY,
--                           token = secrets.TOKEN, logger = watch:logger() }
--   watch:see(client, res, err)      -- tostring() and a deep walk of every value
--   watch:assert_clean()
--
-- Values are checked as they are seen and only findings are kept, so a watcher can run through a long
-- matrix without its own memory growing (faults_spec measures memory across two passes).
local M = {}

-- Long, distinctive values that appear nowhere else: a match is a leak, never a coincidence.
M.SECRET_ID = "AKIDHARDENING0SPEC0ID00000000000001"
M.SECRET_KEY = "HardeningKey-q7Zx4Vn9Lw2Rt6Yp3Ks8"
M.TOKEN = "HardeningToken-m5Bc8Xd1Fg4Hj7Kl0Qw3Er6Ty9Ui2Op"

-- Fragments too: a message that cut the key short still leaks most of it.
local NEEDLES = {
  { "secret key", M.SECRET_KEY }, { "token", M.TOKEN },
  { "part of the secret key", M.SECRET_KEY:sub(14, 27) }, { "part of the token", M.TOKEN:sub(16, 32) },
}
M.NEEDLES = NEEDLES

-- An emulator fixture whose only credentials are ours (temporary: the token is required).
function M.fixture(extra)
  local f = {
    defaults = true,
    rate_limit = 0,
    credentials = { { secret_id = M.SECRET_ID, secret_key = M.SECRET_KEY, token = M.TOKEN } },
  }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

-- Client options carrying our credentials.
function M.credentials(o)
  o = o or {}
  o.secret_id, o.secret_key, o.token = M.SECRET_ID, M.SECRET_KEY, M.TOKEN
  return o
end

-- Returns the name of the first needle found in s, or nil.
function M.find(s)
  if type(s) ~= "string" then return nil end
  for _, n in ipairs(NEEDLES) do
    if s:find(n[2], 1, true) then return n[1] end
  end
end

local Watch = {}
Watch.__index = Watch

function M.watch()
  return setmetatable({ findings = {}, checked = 0 }, Watch)
end

function Watch:_check(where, s)
  self.checked = self.checked + 1
  local what = M.find(s)
  if what and #self.findings < 20 then
    -- Never copy the secret into the report: say where, and show the text with it masked.
    local masked = s
    for _, n in ipairs(NEEDLES) do masked = masked:gsub(n[2]:gsub("%p", "%%%0"), "<" .. n[1] .. ">") end
    self.findings[#self.findings + 1] = string.format("%s in %s: %s", what, where, masked:sub(1, 300))
  end
end

-- tostring through a metatable's __tostring; a raising __tostring is itself worth reporting.
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<tostring raised: " .. tostring(s) .. ">"
end

-- Walks v deeply (keys, values and metatables; cycles visited once), checking every string and every
-- tostring() it meets.
function Watch:walk(v, where, seen)
  seen = seen or {}
  local t = type(v)
  if t == "string" then
    self:_check(where, v)
  elseif t == "table" or t == "userdata" then
    if seen[v] then return end
    seen[v] = true
    self:_check(where .. " (tostring)", safe_tostring(v))
    if t == "table" then
      for k, x in next, v do
        self:walk(k, where .. " key", seen)
        self:walk(x, where .. "." .. safe_tostring(k), seen)
      end
    end
    local mt = debug.getmetatable(v)
    if type(mt) == "table" then self:walk(mt, where .. " metatable", seen) end
  else
    self:_check(where, safe_tostring(v))
  end
end

-- Remembers nothing but findings; returns its arguments.
function Watch:see(...)
  for i = 1, select("#", ...) do
    self:walk((select(i, ...)), "value " .. i)
  end
  return ...
end

-- A logger for iot.new: each record is walked deeply, then handed to `also` (if any).
function Watch:logger(also)
  return function(record)
    self:walk(record, "logger record")
    if also then also(record) end
  end
end

-- Plain text, e.g. a subprocess's output.
function Watch:text(where, s)
  self:_check(where, s)
end

function Watch:assert_clean()
  if #self.findings > 0 then
    error("a secret leaked (" .. #self.findings .. " finding(s)):\n  " .. table.concat(self.findings, "\n  "), 2)
  end
  return self.checked
end

return M

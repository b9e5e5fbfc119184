-- What the `make bench` and `make profile` scripts share (bench/run.lua, bench/nginx_cpu.lua,
-- bench/profile.lua). Not a spec.
local M = {}

local clock = require("socket").gettime
local t0 = clock()   -- the scripts require this first: their start

-- A line on stderr, stamped with the seconds since the script started.
function M.progress(what)
  io.stderr:write(string.format("[%5.1fs] %s\n", clock() - t0, what))
end

-- Runs cmd under sh; returns its stdout and stderr together whatever its exit status: the callers look for
-- the line a measurement prints and report the whole text when it is missing.
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("*a")
  p:close()
  return text
end

-- The median of t's values, or nil when it has none. t may have gaps (keyed by round: a failed
-- measurement leaves its round out).
function M.median(t)
  local s = {}
  for _, v in pairs(t) do s[#s + 1] = v end
  if #s == 0 then return nil end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

-- v rounded, its digits in groups of three ("1,234,567", "-1,234"), or "n/a" for nil.
function M.thousands(v)
  if v == nil then return "n/a" end
  local sign, digits = string.format("%.0f", v):gsub("^%-0$", "0"):match("^(-?)(%d+)$")
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

return M

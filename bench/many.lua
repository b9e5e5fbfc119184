-- `make bench-many`: 200 DescribeBatchProduction through client:call_many (concurrency 8) beside the same 200
-- one after another, on Lua 5.4 and LuaJIT, against the local emulator adding a fixed delay to every answer
-- and enforcing the service's strict sliding window of 20 per second per action. Prints one table.
--   lua5.4 bench/many.lua [calls] [delays in ms, comma-separated]      (default 200 and 0,200,300)
-- Each measurement runs in a child process of its interpreter (the same script with --child); the emulator
-- counts what it saw: requests refused with RequestLimitExceeded and TCP connections accepted.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path

local function child(mode, n, url)
  package.cpath = "build/" .. (type(jit) == "table" and "luajit" or "lua5.4") .. "/?.so;" .. package.cpath
  local iot = require("tencentcloud.iotexplorer")
  local core = require("tencentcloud.iotexplorer.core")
  local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
  local client = assert(iot.new{ region = "ap-guangzhou", endpoint = url, secret_id = defaults.SECRET_ID,
    secret_key = defaults.SECRET_KEY })
  local list = {}
  for i = 1, n do list[i] = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } end
  local ok, limited = 0, 0
  local function tally(res, err)
    if res then ok = ok + 1 elseif err.code == "RequestLimitExceeded" then limited = limited + 1 end
  end
  local cpu, wall = os.clock(), core.now()
  if mode == "many" then
    local results, errs = client:describe_batch_productions(list, { concurrency = 8 })
    for i = 1, n do tally(results[i], errs[i]) end
  else
    for i = 1, n do tally(client:describe_batch_production(list[i])) end
  end
  wall, cpu = core.now() - wall, os.clock() - cpu
  client:close()
  io.write(string.format("RESULT ok=%d limited=%d wall=%.3f cpu=%.4f\n", ok, limited, wall, cpu))
end

if arg[1] == "--child" then
  child(arg[2], tonumber(arg[3]), arg[4])
  os.exit(0)
end

package.cpath = "build/lua5.4/?.so;" .. package.cpath
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local n = tonumber(arg[1]) or 200
local delays = {}
for d in (arg[2] or "0,200,300"):gmatch("%d+") do delays[#delays + 1] = tonumber(d) end

local emu = emulator.start{ fixture = { rate_limit = 20 } }
local rows = {}
for _, delay in ipairs(delays) do
  for _, interpreter in ipairs({ "lua5.4", "luajit" }) do
    for _, mode in ipairs({ "sequential", "many" }) do
      emu:reset()
      emu:set{ delay_ms = delay }
      local before = emu:counters()
      local cmd = string.format("env -u LD_PRELOAD %s bench/many.lua --child %s %d %s", interpreter, mode, n,
        util.shell_quote(emu.url))
      local out = util.check_output(cmd)
      local after = emu:counters()
      local ok, limited, wall, cpu = out:match("RESULT ok=(%d+) limited=(%d+) wall=([%d.]+) cpu=([%d.]+)")
      if not ok then error("no result from " .. cmd .. ":\n" .. out) end
      rows[#rows + 1] = {
        delay = delay, interpreter = interpreter, mode = mode, ok = tonumber(ok), wall = tonumber(wall),
        cpu_ms = tonumber(cpu) * 1000 / n,
        -- What the service refused, and the connections the client opened (less the counters request's own).
        limited = after.rate_limited, client_limited = tonumber(limited),
        connections = after.connections - before.connections - 1,
        max_per_second = after.max_per_second, max_in_flight = after.max_in_flight,
      }
      local r = rows[#rows]
      io.stderr:write(string.format("%4d ms  %-7s %-10s %6.2f s\n", delay, interpreter, mode, r.wall))
    end
  end
end
emu:stop()

print(string.format("%d DescribeBatchProduction calls; the emulator adds the delay to every answer and allows 20 "
  .. "per sliding second per action", n))
print(string.format("%-6s %-7s %-18s %8s %8s %7s %8s %6s %6s %9s", "delay", "lua", "mode", "wall s", "calls/s",
  "ok", "limited", "conns", "max/s", "cpu ms/call"))
for _, r in ipairs(rows) do
  print(string.format("%-6s %-7s %-18s %8.2f %8.1f %7d %8d %6d %6d %9.3f", r.delay .. "ms", r.interpreter,
    r.mode == "many" and "call_many (8)" or "sequential", r.wall, n / r.wall, r.ok, r.limited + r.client_limited,
    r.connections, r.max_per_second, r.cpu_ms))
end

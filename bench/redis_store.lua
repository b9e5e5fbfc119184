-- The Redis rate-limit store's cost, in one run: one reservation (client CPU, wall time, round trips as the
-- server counted them) in plain Lua and inside nginx (cosockets, as the store does, and hiredis in the thread
-- pool, measured for comparison), then the client's CPU per call with the Redis store beside the in-process
-- limiter, against the local emulator. Starts its own redis-server, emulator and nginx.
--   make && make LUA=luajit && lua5.4 bench/redis_store.lua [reservations] [calls]      (or luajit)
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local flavour = (type(jit) == "table") and "luajit" or _VERSION:gsub("Lua ", "lua")
package.cpath = "build/" .. flavour .. "/?.so;" .. package.cpath

local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local limiter = require("tencentcloud.iotexplorer.limiter")
local redis = require("helpers.redis")
local emulator = require("helpers.emulator")
local nginx = require("helpers.nginx")
local util = require("helpers.util")

local RESERVATIONS = tonumber(arg[1]) or 20000
local CALLS = tonumber(arg[2]) or 2000

local srv = redis.start()
local emu = emulator.start{ fixture = { rate_limit = 0 } } -- no server-side limit: measure the client
local ng

-- Commands clients sent (not those the script runs inside the server): each is one round trip.
local function commands_processed()
  local info, n = srv:command("INFO", "commandstats"), 0
  for name, calls in info:gmatch("cmdstat_([%w|]+):calls=(%d+)") do
    if name ~= "time" and name ~= "get" and name ~= "set" then n = n + tonumber(calls) end
  end
  return n
end

local function row(what, wall_us, cpu_us, extra)
  print(string.format("%-58s %9.1f %9.1f  %s", what, wall_us, cpu_us, extra or ""))
end

local ok, err = pcall(function()
  print(string.format("%s, %d reservations, %d calls", flavour, RESERVATIONS, CALLS))
  print(string.format("%-58s %9s %9s", "", "wall µs", "CPU µs"))

  -- One reservation: the memory store, then Redis (a key of its own; a 1 µs interval never makes it wait).
  local mem = limiter.memory_store()
  local t0, c0 = core.now(), os.clock()
  for _ = 1, RESERVATIONS do mem:reserve("k", 1e-6, core.now(), math.huge) end
  row("reservation, in-process memory store", (core.now() - t0) / RESERVATIONS * 1e6,
    (os.clock() - c0) / RESERVATIONS * 1e6)

  local store = assert(iot.redis_store(srv.url))
  assert(store:reserve("warm", 1e-6, 0, math.huge)) -- connect, load the script
  local before = commands_processed()
  t0, c0 = core.now(), os.clock()
  for _ = 1, RESERVATIONS do assert(store:reserve("bench", 1e-6, 0, math.huge)) end
  local wall, cpu = (core.now() - t0) / RESERVATIONS * 1e6, (os.clock() - c0) / RESERVATIONS * 1e6
  local per = (commands_processed() - before - 1) / RESERVATIONS -- the INFO itself is one
  row("reservation, Redis store (hiredis)", wall, cpu, string.format("%.2f round trips", per))
  store:close()

  -- Inside nginx: one worker, n reservations in one request.
  ng = nginx.start{ workers = 1, template = util.ROOT .. "/spec/helpers/redis_nginx.conf.in", vars = {
    REDIS_URL = srv.url, FLEET_SIZE = 1, EMULATOR = emu.url, SECRET_ID = emu.secret_id,
    SECRET_KEY = emu.secret_key, MAX_ATTEMPTS = 1, RATE_LIMIT = 20 } }
  for _, loc in ipairs({ "/reserve", "/reserve_thread" }) do
    ng:get(loc .. "?n=100") -- warm: pooled connection, thread VMs
    before = commands_processed()
    local status, _, body = ng:get(loc .. "?n=" .. RESERVATIONS, 300)
    assert(status == 200, tostring(body))
    per = (commands_processed() - before - 1) / RESERVATIONS
    local w, c = body:match("([%d.]+) ([%d.]+)")
    row(loc == "/reserve" and "reservation in nginx, cosockets (what the store uses)"
      or "reservation in nginx, hiredis in the thread pool", tonumber(w), tonumber(c),
      string.format("%.2f round trips", per))
  end

  -- CPU per call against the emulator: rate limits far above what one client reaches, so nothing waits.
  local function calls(label, o)
    o.region, o.endpoint, o.secret_id, o.secret_key = "ap-guangzhou", emu.url, emu.secret_id, emu.secret_key
    o.metadata_endpoint, o.rate_limit, o.max_attempts = false, 1e6, 1
    local c = assert(iot.new(o))
    local params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
    for _ = 1, 20 do assert(c:describe_batch_production(params)) end
    local t, cl = core.now(), os.clock()
    for _ = 1, CALLS do assert(c:describe_batch_production(params)) end
    row(label, (core.now() - t) / CALLS * 1e6, (os.clock() - cl) / CALLS * 1e6)
    c:close()
  end
  calls("call, in-process limiter (memory store)", {})
  local s = assert(iot.redis_store(srv.url))
  calls("call, Redis store", { rate_limit_store = s })
  s:close()
end)
if ng then ng:stop() end
emu:stop()
srv:stop()
assert(ok, err)

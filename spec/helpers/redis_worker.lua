-- One member of a fleet for spec/redis_spec.lua (a script, run by util.lua_command in its own process):
-- calls DescribeBatchProduction as fast as its rate-limit store lets it, from start_at until stop_at (both
-- on CLOCK_MONOTONIC, which every process of the machine shares), then prints one JSON line of counts.
--   redis_worker.lua <redis url> <emulator url> <secret id> <secret key> <start_at> <stop_at> <fleet size>
--     <on_failure> <max_attempts> <rate_limit>
local cjson = require("cjson")
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")

local redis_url, endpoint, secret_id, secret_key = arg[1], arg[2], arg[3], arg[4]
local start_at, stop_at, fleet_size = tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7])
local on_failure, max_attempts, rate_limit = arg[8], tonumber(arg[9]), tonumber(arg[10])

local logs, why = {}, {}
local store = assert(iot.redis_store(redis_url, { fleet_size = fleet_size, on_failure = on_failure,
  logger = function(r) logs[#logs + 1] = r.event; why[#why + 1] = r.error end }))
local client = assert(iot.new{
  region = "ap-guangzhou", endpoint = endpoint, secret_id = secret_id, secret_key = secret_key,
  metadata_endpoint = false, rate_limit_store = store, rate_limit = rate_limit, max_attempts = max_attempts,
  backoff_base = 0.05,
})

local counts = { ok = 0, failed = 0, errors = {}, store_events = logs, store_errors = why }
local wait = start_at - core.now()
if wait > 0 then core.sleep(wait) end
while core.now() < stop_at do
  local res, err = client:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
  if res then
    counts.ok = counts.ok + 1
  else
    counts.failed = counts.failed + 1
    counts.errors[err.code] = (counts.errors[err.code] or 0) + 1
    counts.last_error = tostring(err)
    counts.last_sent = err.sent
    if err.code == "ClientError.RateLimiterUnavailable" then core.sleep(0.01) end
  end
end
counts.finished_at = core.now()
client:close()
io.write(cjson.encode(counts), "\n")

-- make test-valgrind: client:call_many over the core's multi handle against the local emulator, under
-- memcheck (the Makefile adds valgrind). Batches of results, API errors and refused inputs, a batch stopped
-- by on_result (in-flight transfers abandoned), a batch whose deadline cuts transfers short, a client closed
-- from on_result and a multi handle left to the collector.
--   lua5.4 spec/valgrind/many_loop.lua [items]      (default 2000, or $TCIOT_VALGRIND_ITEMS)
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("TCIOT_CPATH") or "build/lua5.4/?.so") .. ";" .. package.cpath

local iot = require("tencentcloud.iotexplorer")
local emulator = require("helpers.emulator")

local items = tonumber(arg[1] or os.getenv("TCIOT_VALGRIND_ITEMS") or 2000)
local BATCH = 200
local emu = emulator.start{ fixture = { rate_limit = 0 }, timeout = 60 }

local function fail(what)
  emu:stop()
  io.stderr:write("many_loop: ", what, "\n")
  os.exit(1)
end

local function new_client()
  return assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, secret_id = emu.secret_id,
    secret_key = emu.secret_key, rate_limit = false, timeout = 30, backoff_base = 0.01 })
end

-- Item i of a list: every 10th names a batch that does not exist, every 100th lacks its batch id.
local function item(i)
  if i % 100 == 0 then
    return { ProductId = "R32ONVL0EU" }
  end
  return { ProductId = "R32ONVL0EU", BatchProductionId = i % 10 == 0 and "LC-missing0" or "LC-ya6zinv9" }
end

local counts = { ok = 0, api_error = 0, input_error = 0 }
local started = os.time()
local client = new_client()
local done = 0
while done < items do
  local list = {}
  for i = 1, math.min(BATCH, items - done) do list[i] = item(done + i) end
  local results, errs = client:describe_batch_productions(list, { concurrency = 8 })
  for i = 1, #list do
    local res, err = results[i], errs[i]
    if res and res.BatchCnt == 3 then
      counts.ok = counts.ok + 1
    elseif err and err.code == "ResourceNotFound.BatchProductionNotExist" then
      counts.api_error = counts.api_error + 1
    elseif err and err.field == "BatchProductionId" then
      counts.input_error = counts.input_error + 1
    else
      fail("item " .. (done + i) .. ": " .. tostring(err))
    end
  end
  done = done + #list
end

-- Stopped by on_result while transfers are in flight: they are abandoned.
emu:set{ delay_ms = 100 }
local list = {}
for i = 1, 40 do list[i] = item(1) end
local results, errs = client:describe_batch_productions(list, { concurrency = 8, on_result = function()
  error("enough")
end })
if not results or errs[40].code ~= "ClientError.CallbackError" then fail("on_result did not stop the batch") end

-- A deadline shorter than the answers: curl gives up on transfers in flight.
emu:set{ delay_ms = 400 }
results, errs = client:describe_batch_productions(list, { concurrency = 8, deadline = 0.2 })
if not results or errs[1].code ~= "ClientError.Timeout" then fail("the deadline did not cut the batch") end

-- The client closed from on_result, then a client dropped with its multi handle for the collector.
emu:set{ delay_ms = 50 }
results = client:describe_batch_productions(list, { on_result = function() client:close() end })
if not results or not client.closed then fail("closing from on_result") end
new_client():describe_batch_productions({ item(1), item(2) })
collectgarbage()
collectgarbage()

emu:stop()
print(string.format("valgrind many_loop: %d items (%d results, %d API errors, %d refused inputs) in %d s",
  items, counts.ok, counts.api_error, counts.input_error, os.time() - started))

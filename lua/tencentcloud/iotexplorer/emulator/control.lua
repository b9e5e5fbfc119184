-- The control endpoint, /_emulator/*: what specs use to arrange the world and read what happened. No
-- authentication (the emulator listens on loopback), and faults never apply to it.
--
--   GET  /_emulator/counters   what was counted (counters.lua), plus the connections open now
--   POST /_emulator/reset      clears faults, counters and rate windows (batches and credentials stay)
--   GET|POST /_emulator/config run-time settings (state.lua's CONFIG_KEYS, numbers)
--   GET|POST /_emulator/faults queue one fault or an array (faults.lua); GET: how many are pending
--   GET  /_emulator/errors     per action, the error codes a fault of kind "error" may inject
--   GET|POST /_emulator/batches  seed batches (fixture fields); GET lists them with their status
--   POST /_emulator/products   add products
--   GET  /_emulator/sts, POST /_emulator/sts/revoke, POST /_emulator/sts/expire   (sts.lua)
local cjson = require("cjson.safe")
local wire = require("tencentcloud.iotexplorer.emulator.wire")
local sts = require("tencentcloud.iotexplorer.emulator.sts")
local Faults = require("tencentcloud.iotexplorer.emulator.faults")

local M = {}

local json_response = wire.json_response

local function batch_view(emu, b)
  local v, done = emu.state:describe(b)
  v.DownloadUrl = done and emu.store:url(emu:base_url(), b) or ""
  v.BatchProductionId, v.ProductId, v.ProjectId = b.BatchProductionId, b.ProductId, b.ProjectId
  return v
end

-- Accepts one object or a JSON array of objects.
local function each(body, fn)
  local v = cjson.decode(body ~= "" and body or "{}")
  if type(v) ~= "table" then return nil, "body must be JSON" end
  if not body:match("^%s*%[") then v = { v } end
  local out = {}
  for _, item in ipairs(v) do
    local r, err = fn(item)
    if not r then return nil, err end
    out[#out + 1] = r
  end
  return out
end

local function object(body)
  local v = cjson.decode(body ~= "" and body or "{}")
  if type(v) ~= "table" then return nil end
  return v
end

local routes = {}

routes["GET /_emulator/counters"] = function(emu)
  local c = emu.counters.c
  c.open_connections = emu.server and emu.server:open_count() or 0
  return json_response(200, c)
end

routes["POST /_emulator/reset"] = function(emu)
  emu.faults:clear()
  emu.counters:reset()
  return json_response(200, { ok = true })
end

routes["POST /_emulator/faults"] = function(emu, req)
  local out, err = each(req.body, function(f) return emu.faults:add(f) end)
  if not out then return json_response(400, { error = err }) end
  return json_response(200, { ok = true, pending = #emu.faults.queue })
end

routes["GET /_emulator/faults"] = function(emu)
  return json_response(200, { pending = #emu.faults.queue })
end

routes["GET /_emulator/errors"] = function()
  return json_response(200, Faults.injectable())
end

local function config(emu, req)
  if req.method == "POST" then
    local v = cjson.decode(req.body)
    if type(v) ~= "table" then return json_response(400, { error = "body must be a JSON object" }) end
    local ok, err = emu.state:set_config(v)
    if not ok then return json_response(400, { error = err }) end
  end
  return json_response(200, emu.state.config)
end
routes["GET /_emulator/config"] = config
routes["POST /_emulator/config"] = config

routes["POST /_emulator/batches"] = function(emu, req)
  local out, err = each(req.body, function(b)
    local batch, e = emu.state:add_batch(b)
    return batch and batch_view(emu, batch), e
  end)
  if not out then return json_response(400, { error = err }) end
  return json_response(200, { batches = out })
end

routes["GET /_emulator/batches"] = function(emu)
  local out = {}
  for _, b in pairs(emu.state.batches) do out[#out + 1] = batch_view(emu, b) end
  table.sort(out, function(a, b) return a.BatchProductionId < b.BatchProductionId end)
  return json_response(200, { batches = out })
end

routes["POST /_emulator/products"] = function(emu, req)
  local out, err = each(req.body, function(p) return emu.state:add_product(p) end)
  if not out then return json_response(400, { error = err }) end
  return json_response(200, { products = out })
end

routes["GET /_emulator/sts"] = function(emu)
  return json_response(200, sts.view(emu))
end

local function sts_change(fn)
  return function(emu, req)
    local n, err = fn(emu, object(req.body))
    if not n then return json_response(400, { error = err }) end
    return json_response(200, { ok = true, changed = n })
  end
end
routes["POST /_emulator/sts/revoke"] = sts_change(sts.revoke)
routes["POST /_emulator/sts/expire"] = sts_change(sts.expire)

function M.handle(emu, req)
  local route = req.method .. " " .. req.path
  local fn = routes[route]
  if not fn then return json_response(404, { error = "unknown control route " .. route }) end
  return fn(emu, req)
end

return M

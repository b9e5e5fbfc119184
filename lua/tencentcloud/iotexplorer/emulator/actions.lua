-- The iotexplorer actions, one handler each. The parameters are checked before a handler runs, by the
-- client's own check.params over the action's table in actions.lua, and the error's kind picks the
-- service's code (actions.COMMON_PARAMETER_ERRORS). A handler gets the checked copy and returns the
-- response fields, or nil, code, message.
local cjson = require("cjson.safe")
local api = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local wire = require("tencentcloud.iotexplorer.emulator.wire")

local M = {}

local handlers = {}

local function no_product(id)
  return nil, "ResourceNotFound.StudioProductNotExist", "Product " .. id .. " does not exist."
end

local function no_project(id)
  return nil, "ResourceNotFound.ProjectNotExist", "Project " .. id .. " does not exist."
end

function handlers.DescribeBatchProduction(emu, p)
  local state = emu.state
  if not state.products[p.ProductId] then return no_product(p.ProductId) end
  local b = state.batches[p.BatchProductionId]
  if not b or b.ProductId ~= p.ProductId then
    return nil, "ResourceNotFound.BatchProductionNotExist",
      "Batch production " .. p.BatchProductionId .. " does not exist."
  end
  local view, done = state:describe(b)
  view.DownloadUrl = done and emu.store:url(emu:base_url(), b) or ""
  return view
end

function handlers.CreateBatchProduction(emu, p)
  local state = emu.state
  if not state:has_project(p.ProjectId) then return no_project(p.ProjectId) end
  local product = state.products[p.ProductId]
  if not product then return no_product(p.ProductId) end
  if product.ProjectId ~= p.ProjectId then
    return nil, "UnauthorizedOperation.NoPermissionToProject",
      "Product does not belong to project " .. p.ProjectId .. "."
  end
  -- With an uploaded file (GenerationMethod 1) the file decides the count; the emulator makes one device.
  local b = assert(state:add_batch({
    ProductId = p.ProductId, BatchCnt = p.BatchCnt or 1, BurnMethod = p.BurnMethod,
    GenerationMethod = p.GenerationMethod, UploadUrl = p.UploadUrl or "", GenerationQRCode = p.GenerationQRCode,
  }))
  return { ProjectId = p.ProjectId, ProductId = p.ProductId, BatchProductionId = b.BatchProductionId }
end

local ITEM_FIELDS = api.by_name.GetBatchProductionsList.item_fields
local PAGE_SIZE = api.by_name.GetBatchProductionsList.paged.page_size

function handlers.GetBatchProductionsList(emu, p)
  local state = emu.state
  if not state:has_project(p.ProjectId) then return no_project(p.ProjectId) end
  local all = state:list_project(p.ProjectId)
  local offset, limit = p.Offset or 0, p.Limit or PAGE_SIZE
  local out = {}
  for i = offset + 1, math.min(#all, offset + limit) do
    local b = all[i]
    local product = state.products[b.ProductId]
    local full = { BatchProductionId = b.BatchProductionId, ProductId = b.ProductId, BurnMethod = b.BurnMethod,
      CreateTime = b.CreateTime, ProductName = product and product.ProductName or "" }
    local item = {}
    for name in pairs(ITEM_FIELDS) do item[name] = full[name] end
    out[#out + 1] = item
  end
  -- cjson would encode an empty table as {}: force a JSON array.
  if #out == 0 then out = wire.EMPTY_ARRAY end
  return { BatchProductions = out, TotalCnt = #all }
end

-- DeviceInfo as the service answers for a device that was produced and never came online.
function handlers.DescribeDevice(emu, p)
  local state = emu.state
  local product_id, name = p.ProductId, p.DeviceName
  if p.DeviceId then
    product_id, name = p.DeviceId:match("^([^/]+)/(.+)$")
    if not product_id then
      return nil, "InvalidParameterValue", "DeviceId must be ProductId/DeviceName."
    end
  end
  local product = state.products[product_id]
  if not product then
    return nil, "ResourceNotFound.ProductNotExist", "Product " .. product_id .. " does not exist."
  end
  local device, b = state:find_device(product_id, name)
  if not device then
    return nil, "ResourceNotFound.DeviceNotExist", "Device " .. product_id .. "/" .. name .. " does not exist."
  end
  return { Device = {
    DeviceName = device.name, Status = 3, DevicePsk = device.secret, FirstOnlineTime = cjson.null,
    LoginTime = 0, CreateTime = b.CreateTime, Version = "", DeviceCert = "", LogLevel = 0, EnableState = 1,
    ProductId = product_id, ProductName = product.ProductName, DeviceType = "", IsLora = false,
  } }
end

-- GET sends every parameter as a string in the query: read each as its parameter's type, so that
-- check.params judges the value, not its transport ("3" is the Integer 3; "x" stays a wrong type).
local function from_query(action, params)
  local out = {}
  for k, v in pairs(params) do
    local p = action.param_by_name[k]
    if p and p.type == "Integer" and v:match("^%-?%d+$") then
      out[k] = math.tointeger(tonumber(v)) or tonumber(v)
    elseif p and p.type == "Boolean" and (v == "true" or v == "false") then
      out[k] = v == "true"
    else
      out[k] = v
    end
  end
  return out
end

-- cjson reads JSON null as a sentinel: a null parameter is an absent one.
local function drop_nulls(params)
  local out = {}
  for k, v in pairs(params) do
    if v ~= cjson.null then out[k] = v end
  end
  return out
end

M.known = {}
for name in pairs(handlers) do M.known[name] = api.by_name[name] end

-- Runs `name` with `params` (a decoded JSON object, or the query's strings when `from_get`).
-- Returns the fields, or nil, code, message.
function M.run(emu, name, params, from_get)
  local action = api.by_name[name]
  params = from_get and from_query(action, params) or drop_nulls(params)
  local checked, err = check.params(action, params)
  if not checked then
    return nil, api.COMMON_PARAMETER_ERRORS[err.kind] or "InvalidParameter", err.message
  end
  return handlers[name](emu, checked)
end

return M

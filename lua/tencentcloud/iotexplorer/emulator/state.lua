-- Emulated world: credentials, products, batches, STS roles and providers, run-time configuration.
-- Batches progress through Status 0 -> 1 -> 2 -> 3 on real (unskewed) time.
local actions = require("tencentcloud.iotexplorer.actions")
local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
local tc3 = require("tencentcloud.iotexplorer.emulator.tc3")

local M = {}
M.__index = M

-- Run-time settings (numbers), from the fixture and POST /_emulator/config. delay_ms delays every API
-- answer; rate_limit is per action and SecretId (0: none); clock_skew moves the emulator clock.
local CONFIG_KEYS = {
  clock_skew = true, status_step_seconds = true, download_ttl = true,
  rate_limit = true, idle_timeout = true, delay_ms = true,
}
local CONFIG_DEFAULTS = {
  clock_skew = 0, status_step_seconds = 1, download_ttl = 900, rate_limit = actions.RATE_LIMIT,
  idle_timeout = 60, delay_ms = 0,
}
M.CONFIG_KEYS = CONFIG_KEYS

-- Integral numbers as Lua integers on 5.4 (cjson decodes every number as a float).
local function toint(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) then
    return nil
  end
  return math.tointeger and math.tointeger(v) or v
end
M.toint = toint

-- cjson decodes JSON lists that are empty as {} and objects as tables too: accept both.
local function list(v)
  if type(v) ~= "table" then return {} end
  return v
end

-- opts: fixture (decoded JSON table or nil), now_real (function), random_bytes (function).
function M.new(fixture, now_real, download_secret)
  fixture = fixture or {}
  local self = setmetatable({
    credentials = {},      -- secret_id -> {secret_id, secret_key, token, expires_at?, revoked?, issued?}
    roles = {},            -- RoleArn -> role (STS)
    providers = {},        -- ProviderId -> provider (STS)
    issued = {},           -- the credentials STS issued, in order
    products = {},         -- ProductId -> product
    batches = {},          -- BatchProductionId -> batch
    order = 0,             -- creation counter, used as a stable sort key
    now_real = now_real,
    download_secret = download_secret,
    config = {},
  }, M)
  local base = defaults.fixture()
  local use_defaults = fixture.defaults ~= false
  for k in pairs(CONFIG_KEYS) do
    local v = fixture[k]
    if v == nil then v = CONFIG_DEFAULTS[k] end
    if type(v) ~= "number" then error("fixture: " .. k .. " must be a number") end
    self.config[k] = v
  end
  local sources = use_defaults and { base, fixture } or { fixture }
  for _, src in ipairs(sources) do
    for _, c in ipairs(list(src.credentials)) do
      self.credentials[c.secret_id] = { secret_id = c.secret_id, secret_key = c.secret_key, token = c.token }
    end
    local sts = type(src.sts) == "table" and src.sts or {}
    for _, r in ipairs(list(sts.roles)) do
      if type(r.RoleArn) ~= "string" then error("fixture: an STS role needs RoleArn") end
      self.roles[r.RoleArn] = { RoleArn = r.RoleArn, max_duration = toint(r.max_duration) or 43200 }
    end
    for _, pr in ipairs(list(sts.providers)) do
      if type(pr.ProviderId) ~= "string" then error("fixture: an STS provider needs ProviderId") end
      local tokens = {}
      for _, t in ipairs(list(pr.tokens)) do tokens[t] = true end
      self.providers[pr.ProviderId] = { ProviderId = pr.ProviderId, tokens = tokens, roles = list(pr.roles) }
    end
    for _, p in ipairs(list(src.products)) do
      self:add_product(p)
    end
  end
  for _, src in ipairs(sources) do
    for _, b in ipairs(list(src.batches)) do
      local ok, err = self:add_batch(b)
      if not ok then error("fixture batch: " .. err) end
    end
  end
  return self
end

function M:clock()
  return self.now_real() + (tonumber(self.config.clock_skew) or 0)
end

function M:set_config(tbl)
  for k, v in pairs(tbl) do
    if not CONFIG_KEYS[k] then return nil, "unknown config key " .. tostring(k) end
    if type(v) ~= "number" then return nil, "config " .. k .. " must be a number" end
  end
  for k, v in pairs(tbl) do self.config[k] = v end
  return true
end

function M:add_product(p)
  if type(p) ~= "table" or type(p.ProductId) ~= "string" then return nil, "product needs ProductId" end
  self.products[p.ProductId] = {
    ProductId = p.ProductId,
    ProjectId = p.ProjectId or "PROJECT0001",
    ProductName = p.ProductName or p.ProductId,
    fail_reason = p.fail_reason,   -- batches created for this product fail
    fail_status = p.fail_status,
  }
  return self.products[p.ProductId]
end

local ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
function M:new_batch_id()
  while true do
    local t = {}
    for i = 1, 8 do
      local n = math.random(#ID_CHARS)
      t[i] = ID_CHARS:sub(n, n)
    end
    local id = "LC-" .. table.concat(t)
    if not self.batches[id] then return id end
  end
end

-- Adds a batch from a fixture/control/Create description. Fields: BatchProductionId?,
-- ProductId, BatchCnt, BurnMethod, GenerationMethod, UploadUrl, GenerationQRCode,
-- CreateTime?, Status? (freezes the status), SuccessCount?, LastFailedReason? or
-- fail_reason (the batch stops at fail_status, default 1), fail_success_count?.
function M:add_batch(b)
  if type(b) ~= "table" then return nil, "batch must be an object" end
  local product = self.products[b.ProductId]
  if not product then return nil, "unknown ProductId " .. tostring(b.ProductId) end
  local now = self.now_real()
  self.order = self.order + 1
  local fail_reason = b.fail_reason or product.fail_reason
  if b.LastFailedReason and b.LastFailedReason ~= "" then fail_reason = b.LastFailedReason end
  local batch = {
    BatchProductionId = b.BatchProductionId or self:new_batch_id(),
    ProductId = b.ProductId,
    ProjectId = product.ProjectId,
    BatchCnt = toint(b.BatchCnt) or 1,
    BurnMethod = toint(b.BurnMethod) or 0,
    GenerationMethod = toint(b.GenerationMethod) or 0,
    UploadUrl = b.UploadUrl or "",
    GenerationQRCode = toint(b.GenerationQRCode) or 0,
    CreateTime = toint(b.CreateTime) or toint(math.floor(self:clock())),
    fixed_status = toint(b.Status),
    fixed_success = toint(b.SuccessCount),
    fail_reason = fail_reason,
    fail_status = toint(b.fail_status) or toint(product.fail_status) or 1,
    fail_success_count = toint(b.fail_success_count),
    created_at = now,
    order = self.order,
  }
  self.batches[batch.BatchProductionId] = batch
  return batch
end

-- Returns Status, SuccessCount, LastFailedReason at this moment.
function M:progress(b)
  local cnt = b.BatchCnt
  if b.fixed_status then
    local success = b.fixed_success or (b.fixed_status >= 2 and cnt or 0)
    return b.fixed_status, success, b.fail_reason or ""
  end
  local step = tonumber(self.config.status_step_seconds) or 1
  local elapsed = self.now_real() - b.created_at
  local status, frac = 3, 1
  if step > 0 then
    local steps = elapsed / step
    status = math.min(3, math.floor(steps))
    frac = steps - math.floor(steps)
  end
  if b.fail_reason and status >= b.fail_status then
    local success = b.fail_success_count or math.floor(cnt / 2)
    return b.fail_status, toint(success), b.fail_reason
  end
  local success
  if status == 0 then success = 0
  elseif status == 1 then success = math.floor(cnt * frac)
  else success = cnt end
  return toint(status), toint(success), ""
end

-- Public view of a batch as DescribeBatchProduction returns it, without DownloadUrl and RequestId.
function M:describe(b)
  local status, success, reason = self:progress(b)
  return {
    BatchCnt = b.BatchCnt, BurnMethod = b.BurnMethod, CreateTime = b.CreateTime,
    GenerationMethod = b.GenerationMethod, UploadUrl = b.UploadUrl,
    Status = status, SuccessCount = success, LastFailedReason = reason,
  }, status == 3 and reason == ""
end

-- The devices of a batch, in its device file's order: { name, secret }, derived from the run's secret so
-- the file and DescribeDevice agree.
function M:devices(b)
  local out = {}
  local prefix = b.BatchProductionId:gsub("[^%w]", "")
  for i = 1, b.BatchCnt do
    local name = string.format("%s_%04d", prefix, i)
    out[i] = { name = name, index = i,
      secret = tc3.hex(tc3.hmac_sha256(self.download_secret, b.ProductId .. "/" .. name)):sub(1, 24) }
  end
  return out
end

-- The device `name` of product `product_id` among the batches that finished, or nil.
function M:find_device(product_id, name)
  local prefix, n = name:match("^(%w+)_(%d+)$")
  if not prefix then return nil end
  for _, b in pairs(self.batches) do
    local _, done = self:describe(b)
    if done and b.ProductId == product_id and b.BatchProductionId:gsub("[^%w]", "") == prefix
        and tonumber(n) >= 1 and tonumber(n) <= b.BatchCnt then
      return self:devices(b)[tonumber(n)], b
    end
  end
end

-- True when some product belongs to the project.
function M:has_project(project_id)
  for _, p in pairs(self.products) do
    if p.ProjectId == project_id then return true end
  end
  return false
end

-- Batches of a project, newest first.
function M:list_project(project_id)
  local out = {}
  for _, b in pairs(self.batches) do
    if b.ProjectId == project_id then out[#out + 1] = b end
  end
  table.sort(out, function(a, c)
    if a.CreateTime ~= c.CreateTime then return a.CreateTime > c.CreateTime end
    return a.order > c.order
  end)
  return out
end

return M

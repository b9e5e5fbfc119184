-- Local emulator of the Tencent Cloud IoT Explorer API 3.0 (batch production actions),
-- for tests. See README ("Local API emulator") for the fixture and the control endpoint.
local socket = require("socket")
local cjson = require("cjson.safe")
local rand = require("openssl.rand")
local tc3 = require("tencentcloud.iotexplorer.emulator.tc3")
local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
local State = require("tencentcloud.iotexplorer.emulator.state")
local Faults = require("tencentcloud.iotexplorer.emulator.faults")
local Server = require("tencentcloud.iotexplorer.emulator.server")

local toint = State.toint

local M = {}
M.__index = M

M.MAX_BODY = 10 * 1024 * 1024
M.MAX_SKEW = 300

local function request_id()
  local b = rand.bytes(16)
  local h = tc3.hex(b)
  return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

local function new_counters()
  return {
    requests = 0, by_action = {}, rate_limited = 0, max_per_second = 0,
    auth_failures = 0, last_headers = {}, connections = 0,
    errors = {}, faults_applied = 0, downloads = 0,
  }
end

-- opts: fixture (decoded table), host, port, log (function or nil).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    host = opts.host or "127.0.0.1",
    port = opts.port or 0,
    log = opts.log,
    state = State.new(opts.fixture, socket.gettime, rand.bytes(32)),
    faults = Faults.new(),
    counters = new_counters(),
    windows = {},    -- secret_id -> arrival times within the last second (real clock)
  }, M)
  return self
end

function M:base_url()
  return "http://" .. self.host .. ":" .. tostring(self.port)
end

function M:http_date()
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(self.state:clock()))
end

-- Debian's lua-cjson has no empty-array support: encode a marker and patch it.
local EMPTY_ARRAY = "\0emulator-empty-array\0"
local EMPTY_ARRAY_JSON = assert(cjson.encode(EMPTY_ARRAY))

-- cjson escapes "/" as "\/"; the real API does not, and URLs read better without.
-- (A literal backslash is encoded as "\\", so "\/" is always an escaped slash.)
local function encode(value)
  local body = assert(cjson.encode(value))
  body = body:gsub("\\/", "/"):gsub(EMPTY_ARRAY_JSON:gsub("%p", "%%%0"), "[]")
  return body
end

-- The API answers errors with HTTP 200 and an Error envelope.
local function envelope(fields, rid)
  fields.RequestId = rid
  return {
    status = 200,
    headers = { ["Content-Type"] = "application/json" },
    body = encode({ Response = fields }),
  }
end

function M:api_error(code, message, rid)
  self.counters.errors[code] = (self.counters.errors[code] or 0) + 1
  return envelope({ Error = { Code = code, Message = message } }, rid or request_id())
end

---------------------------------------------------------------------------
-- Actions. Each returns a fields table or nil, code, message.

local function missing(name)
  return nil, "MissingParameter", "The request is missing a required parameter `" .. name .. "`."
end

local function invalid(name)
  return nil, "InvalidParameterValue", "The value of parameter `" .. name .. "` is invalid."
end

local function str_param(p, name)
  local v = p[name]
  if v == nil or v == cjson.null then return missing(name) end
  if type(v) ~= "string" or v == "" then return invalid(name) end
  return v
end

local function int_param(p, name, default, lo, hi)
  local v = p[name]
  if v == nil or v == cjson.null then
    if default == nil then return missing(name) end
    return default
  end
  local n = toint(v)
  if not n or (lo and n < lo) or (hi and n > hi) then return invalid(name) end
  return n
end

local actions = {}

function actions.DescribeBatchProduction(self, p)
  local product_id, c1, m1 = str_param(p, "ProductId")
  if not product_id then return nil, c1, m1 end
  local batch_id, c2, m2 = str_param(p, "BatchProductionId")
  if not batch_id then return nil, c2, m2 end
  if not self.state.products[product_id] then
    return nil, "ResourceNotFound.StudioProductNotExist", "Product " .. product_id .. " does not exist."
  end
  local b = self.state.batches[batch_id]
  if not b or b.ProductId ~= product_id then
    return nil, "ResourceNotFound.BatchProductionNotExist", "Batch production " .. batch_id .. " does not exist."
  end
  return self.state:describe(b, self:base_url())
end

function actions.CreateBatchProduction(self, p)
  local project_id, c, m = str_param(p, "ProjectId")
  if not project_id then return nil, c, m end
  local product_id
  product_id, c, m = str_param(p, "ProductId")
  if not product_id then return nil, c, m end
  local burn, gen, cnt
  burn, c, m = int_param(p, "BurnMethod", nil, 0, 1)
  if not burn then return nil, c, m end
  gen, c, m = int_param(p, "GenerationMethod", nil, 0, 1)
  if not gen then return nil, c, m end
  cnt, c, m = int_param(p, "BatchCnt", gen == 1 and 1 or nil, 1, 100000)
  if not cnt then return nil, c, m end
  local upload = p.UploadUrl
  if upload == cjson.null then upload = nil end
  if upload ~= nil and type(upload) ~= "string" then
    return invalid("UploadUrl")
  end
  if gen == 1 and (upload or "") == "" then
    return nil, "MissingParameter", "GenerationMethod 1 requires `UploadUrl`."
  end
  local qr = p.GenerationQRCode
  if qr ~= nil and qr ~= cjson.null and type(qr) ~= "boolean" then
    return invalid("GenerationQRCode")
  end
  local product = self.state.products[product_id]
  if not product then
    return nil, "ResourceNotFound.StudioProductNotExist", "Product " .. product_id .. " does not exist."
  end
  if product.ProjectId ~= project_id then
    return nil, "UnauthorizedOperation.NoPermissionToProject",
      "Product does not belong to project " .. project_id .. "."
  end
  local b = assert(self.state:add_batch({
    ProductId = product_id, BatchCnt = cnt, BurnMethod = burn, GenerationMethod = gen,
    UploadUrl = upload or "", GenerationQRCode = qr == true or nil,
  }))
  return { ProjectId = project_id, ProductId = product_id, BatchProductionId = b.BatchProductionId }
end

function actions.GetBatchProductionsList(self, p)
  local project_id, c, m = str_param(p, "ProjectId")
  if not project_id then return nil, c, m end
  local offset, limit
  offset, c, m = int_param(p, "Offset", 0, 0)
  if not offset then return nil, c, m end
  limit, c, m = int_param(p, "Limit", 20, 1, 100)
  if not limit then return nil, c, m end
  local all = self.state:list_project(project_id)
  local out = {}
  for i = offset + 1, math.min(#all, offset + limit) do
    local b = all[i]
    local status, success = self.state:progress(b)
    local product = self.state.products[b.ProductId]
    out[#out + 1] = {
      BatchProductionId = b.BatchProductionId, ProductId = b.ProductId,
      ProductName = product and product.ProductName or "",
      BatchCnt = b.BatchCnt, BurnMethod = b.BurnMethod, GenerationMethod = b.GenerationMethod,
      CreateTime = b.CreateTime, Status = status, SuccessCount = success,
    }
  end
  -- cjson would encode an empty table as {}: force a JSON array.
  if #out == 0 then out = EMPTY_ARRAY end
  return { BatchProductions = out, TotalCnt = toint(#all) }
end

---------------------------------------------------------------------------
-- Request pipeline for POST /.

-- Sliding one-second window per secret id over requests that passed authentication
-- (requests then rejected by the limiter count too, as they reached the service).
function M:rate_check(secret_id)
  local now = socket.gettime()
  local win = self.windows[secret_id] or {}
  local kept = {}
  for _, t in ipairs(win) do
    if t > now - 1 then kept[#kept + 1] = t end
  end
  kept[#kept + 1] = now
  self.windows[secret_id] = kept
  if #kept > self.counters.max_per_second then self.counters.max_per_second = #kept end
  local limit = tonumber(self.state.config.rate_limit) or 20
  return limit <= 0 or #kept <= limit
end

-- Authentication. Returns secret_id or nil, code, message.
function M:authenticate(req, timestamp)
  local h = req.headers
  local auth, why = tc3.parse_authorization(h.authorization)
  if not auth then return nil, "AuthFailure.SignatureFailure", "Invalid Authorization: " .. why .. "." end
  if auth.service ~= defaults.SERVICE or auth.terminator ~= "tc3_request" then
    return nil, "AuthFailure.SignatureFailure", "Credential scope must be <date>/iotexplorer/tc3_request."
  end
  local cred = self.state.credentials[auth.secret_id]
  if not cred then return nil, "AuthFailure.SecretIdNotFound", "The SecretId is not found." end
  local now = self.state:clock()
  if math.abs(timestamp - now) > M.MAX_SKEW then
    return nil, "AuthFailure.SignatureExpire", string.format(
      "Signature expired. Timestamp %d, server time %d, tolerance %ds.", timestamp, math.floor(now), M.MAX_SKEW)
  end
  if auth.date ~= os.date("!%Y-%m-%d", timestamp) then
    return nil, "AuthFailure.SignatureFailure", "Credential date must be the UTC date of X-TC-Timestamp."
  end
  local ok, reason = tc3.verify(req, auth, cred.secret_key, h["x-tc-timestamp"])
  if not ok then
    return nil, "AuthFailure.SignatureFailure", "The provided credentials could not be validated (" .. reason .. ")."
  end
  local token = h["x-tc-token"]
  if cred.token and token ~= cred.token then
    return nil, "AuthFailure.TokenFailure",
      token and "Invalid token." or "Missing X-TC-Token for temporary credentials."
  end
  if not cred.token and token and token ~= "" then
    return nil, "AuthFailure.TokenFailure", "X-TC-Token sent for permanent credentials."
  end
  return auth.secret_id
end

function M:process(req, rid)
  local h = req.headers
  if req.method ~= "POST" then
    return self:api_error("UnsupportedProtocol", "The emulator only supports POST with TC3-HMAC-SHA256.", rid)
  end
  for _, name in ipairs({ "X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region" }) do
    if (h[name:lower()] or "") == "" then
      return self:api_error("MissingParameter", "The request is missing a required header `" .. name .. "`.", rid)
    end
  end
  local ts = h["x-tc-timestamp"]
  if not ts:match("^%d+$") or #ts > 12 then
    return self:api_error("InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds.", rid)
  end
  local ctype = (h["content-type"] or ""):lower()
  if not ctype:match("^application/json") then
    return self:api_error("InvalidParameter", "Content-Type must be application/json.", rid)
  end
  local secret_id, code, message = self:authenticate(req, tonumber(ts))
  if not secret_id then
    self.counters.auth_failures = self.counters.auth_failures + 1
    return self:api_error(code, message, rid)
  end
  if not self:rate_check(secret_id) then
    self.counters.rate_limited = self.counters.rate_limited + 1
    return self:api_error("RequestLimitExceeded", "Your current request times equals to `" ..
      tostring(self.state.config.rate_limit) .. "` in a second, which exceeds the frequency limit.", rid)
  end
  if h["x-tc-version"] ~= defaults.VERSION then
    return self:api_error("NoSuchVersion",
      "The requested version `" .. h["x-tc-version"] .. "` of service iotexplorer does not exist.", rid)
  end
  if not defaults.REGIONS[h["x-tc-region"]] then
    return self:api_error("UnsupportedRegion", "The action is not supported in region " .. h["x-tc-region"] .. ".", rid)
  end
  local action = actions[h["x-tc-action"]]
  if not action then
    return self:api_error("InvalidAction", "The action `" .. h["x-tc-action"] .. "` does not exist.", rid)
  end
  local params = cjson.decode(req.body)
  if type(params) ~= "table" or not req.body:match("^%s*{") then
    return self:api_error("InvalidParameter", "The request body must be a JSON object.", rid)
  end
  local fields, c, m = action(self, params)
  if not fields then return self:api_error(c, m, rid) end
  return envelope(fields, rid)
end

function M:handle_api(req)
  local c = self.counters
  local action = req.headers["x-tc-action"] or ""
  c.requests = c.requests + 1
  c.by_action[action] = (c.by_action[action] or 0) + 1
  c.last_headers = req.headers
  local rid = request_id()
  local fault = self.faults:take(action)
  if fault then
    c.faults_applied = c.faults_applied + 1
    return Faults.respond(fault, function() return self:process(req, rid) end, rid)
  end
  return self:process(req, rid)
end

---------------------------------------------------------------------------
-- Downloads: /_download/<ProductId>_<BatchId>.csv?expires=<unix>&sig=<hex>

local function query_params(q)
  local out = {}
  for k, v in (q or ""):gmatch("([^&=]+)=([^&]*)") do out[k] = v end
  return out
end

local function cos_error(status, code, message, resource)
  return {
    status = status,
    headers = { ["Content-Type"] = "application/xml" },
    body = "<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n\t<Code>" .. code .. "</Code>\n\t<Message>"
      .. message .. "</Message>\n\t<Resource>" .. resource .. "</Resource>\n\t<RequestId>"
      .. request_id() .. "</RequestId>\n</Error>\n",
  }
end

function M:handle_download(req)
  self.counters.downloads = self.counters.downloads + 1
  local name = req.path:match("^/_download/([^/]+%.csv)$")
  if not name or (req.method ~= "GET" and req.method ~= "HEAD") then
    return cos_error(404, "NoSuchKey", "The specified key does not exist.", req.path)
  end
  local q = query_params(req.query)
  local expires = tonumber(q.expires or "")
  if not expires or q.sig ~= self.state:download_sig(name, q.expires) then
    return cos_error(403, "AccessDenied", "Access Denied.", req.path)
  end
  if expires < self.state:clock() then
    return cos_error(403, "AccessDenied", "Request has expired", req.path)
  end
  local batch_id = name:match("_(LC%-[^_]+)%.csv$") or name:match("^[^_]+_(.+)%.csv$")
  local b = batch_id and self.state.batches[batch_id]
  if not b then return cos_error(404, "NoSuchKey", "The specified key does not exist.", req.path) end
  local resp = { status = 200, headers = { ["Content-Type"] = "text/csv" }, body = self.state:csv(b) }
  -- Faults reach a download only when they name the action "_download" (e.g. a truncated transfer).
  local fault = self.faults:take("_download", true)
  if fault then
    self.counters.faults_applied = self.counters.faults_applied + 1
    return Faults.respond(fault, function() return resp end, request_id())
  end
  return resp
end

---------------------------------------------------------------------------
-- Control endpoint /_emulator/* (no auth; the server only listens on loopback).

local function json_response(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = encode(value) }
end

local function batch_view(self, b)
  local v = self.state:describe(b, self:base_url())
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

function M:handle_control(req)
  local route = req.method .. " " .. req.path
  if route == "GET /_emulator/counters" then
    -- Empty tables encode as {}, which is what by_action, errors and last_headers want.
    return json_response(200, self.counters)
  elseif route == "POST /_emulator/reset" then
    self.faults:clear()
    self.counters = new_counters()
    self.windows = {}
    return json_response(200, { ok = true })
  elseif route == "POST /_emulator/faults" then
    local out, err = each(req.body, function(f) return self.faults:add(f) end)
    if not out then return json_response(400, { error = err }) end
    return json_response(200, { ok = true, pending = #self.faults.queue })
  elseif route == "GET /_emulator/faults" then
    return json_response(200, { pending = #self.faults.queue })
  elseif route == "POST /_emulator/config" or route == "GET /_emulator/config" then
    if req.method == "POST" then
      local v = cjson.decode(req.body)
      if type(v) ~= "table" then return json_response(400, { error = "body must be a JSON object" }) end
      local ok, err = self.state:set_config(v)
      if not ok then return json_response(400, { error = err }) end
    end
    return json_response(200, self.state.config)
  elseif route == "POST /_emulator/batches" then
    local out, err = each(req.body, function(b)
      local batch, e = self.state:add_batch(b)
      return batch and batch_view(self, batch), e
    end)
    if not out then return json_response(400, { error = err }) end
    return json_response(200, { batches = out })
  elseif route == "GET /_emulator/batches" then
    local out = {}
    for _, b in pairs(self.state.batches) do out[#out + 1] = batch_view(self, b) end
    table.sort(out, function(a, b) return a.BatchProductionId < b.BatchProductionId end)
    return json_response(200, { batches = out })
  elseif route == "POST /_emulator/products" then
    local out, err = each(req.body, function(p) return self.state:add_product(p) end)
    if not out then return json_response(400, { error = err }) end
    return json_response(200, { products = out })
  end
  return json_response(404, { error = "unknown control route " .. route })
end

function M:handle(req)
  if req.path == "/" then return self:handle_api(req) end
  if req.path:sub(1, 11) == "/_emulator/" then return self:handle_control(req) end
  if req.path:sub(1, 11) == "/_download/" then return self:handle_download(req) end
  return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
end

---------------------------------------------------------------------------

-- Starts listening; returns the port.
function M:listen(exit_on_stdin_eof)
  self.server = Server.new({
    host = self.host, port = self.port,
    handler = function(req) return self:handle(req) end,
    date = function() return self:http_date() end,
    idle_timeout = function() return tonumber(self.state.config.idle_timeout) or 60 end,
    max_body = M.MAX_BODY,
    on_accept = function() self.counters.connections = self.counters.connections + 1 end,
    log = self.log,
    exit_on_stdin_eof = exit_on_stdin_eof,
    too_large = function()
      self.counters.requests = self.counters.requests + 1
      return self:api_error("RequestSizeLimitExceeded", "The request body exceeds 10 MB.")
    end,
    reject = function(_, _, message)
      local resp = self:api_error("UnsupportedProtocol", message)
      resp.status = 411
      return resp
    end,
  })
  local port, err = self.server:listen()
  if not port then return nil, err end
  self.port = port
  return port
end

function M:run()
  self.server:run()
end

local USAGE = "usage: run.lua [--port N] [--host 127.0.0.1] [--fixture FILE.json] [--exit-on-stdin-eof] [--verbose]"

function M.main(argv)
  local opts, exit_on_eof = {}, false
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--port" then opts.port = tonumber(argv[i + 1]); i = i + 1
    elseif a == "--host" then opts.host = argv[i + 1]; i = i + 1
    elseif a == "--fixture" then opts.fixture_file = argv[i + 1]; i = i + 1
    elseif a == "--exit-on-stdin-eof" then exit_on_eof = true
    elseif a == "--verbose" then opts.log = function(msg) io.stderr:write(msg, "\n") end
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    else io.stderr:write("unknown argument ", tostring(a), "\n", USAGE, "\n"); return 2 end
    i = i + 1
  end
  if opts.fixture_file then
    local f, err = io.open(opts.fixture_file, "rb")
    if not f then io.stderr:write("cannot read fixture: ", err, "\n"); return 2 end
    local text = f:read("*a")
    f:close()
    local fixture, jerr = cjson.decode(text)
    if type(fixture) ~= "table" then
      io.stderr:write("fixture is not a JSON object: ", tostring(jerr), "\n"); return 2
    end
    opts.fixture = fixture
  end
  local ok, emu = pcall(M.new, opts)
  if not ok then io.stderr:write("bad fixture: ", tostring(emu), "\n"); return 2 end
  local port, err = emu:listen(exit_on_eof)
  if not port then io.stderr:write("cannot listen: ", tostring(err), "\n"); return 1 end
  io.stdout:write("EMULATOR_READY ", emu:base_url(), "\n")
  io.stdout:flush()
  emu:run()
  return 0
end

return M

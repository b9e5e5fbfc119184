-- Injected faults for API requests. Each fault applies to the next `count` matching API requests
-- (default 1; -1 = until reset), optionally only for one action. Kind "error" answers an API error: with
-- an `action`, only a code that action documents (actions.lua's `errors`) or a common one, so that a typo
-- in a spec fails loudly. Kind "field" changes the normal answer: {"field": "BatchProductions"} drops the
-- field, {"field": "BatchProductions", "value": null} makes it null (any other value replaces it).
local cjson = require("cjson.safe")
local api = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")

local M = {}
M.__index = M

local KINDS = {
  status = true, delay = true, reset = true, truncate = true, malformed_json = true,
  html = true, raw = true, big = true, error = true, field = true,
}

-- The API 3.0 common error codes, which any action may answer.
M.COMMON_ERRORS = {
  "AuthFailure.InvalidAuthorization", "AuthFailure.InvalidSecretId", "AuthFailure.MFAFailure",
  "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureExpire", "AuthFailure.SignatureFailure",
  "AuthFailure.TokenFailure", "AuthFailure.UnauthorizedOperation", "FailedOperation", "InternalError",
  "InvalidAction", "InvalidParameter", "InvalidParameterValue", "LimitExceeded", "MissingParameter",
  "NoSuchVersion", "RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded",
  "RequestLimitExceeded.GlobalRegionUinLimitExceeded", "RequestLimitExceeded.IPLimitExceeded",
  "RequestSizeLimitExceeded", "ResourceNotFound", "ResourceUnavailable", "ResponseSizeLimitExceeded",
  "ServiceUnavailable", "UnauthorizedOperation", "UnknownParameter", "UnsupportedOperation",
  "UnsupportedProtocol", "UnsupportedRegion",
}

-- Per action, every code a fault may inject: its documented errors, then the common ones.
function M.injectable()
  local out = {}
  for _, a in ipairs(api.list) do
    local codes = {}
    for _, c in ipairs(a.errors) do codes[#codes + 1] = c end
    for _, c in ipairs(M.COMMON_ERRORS) do codes[#codes + 1] = c end
    out[a.name] = codes
  end
  return out
end

local function injectable_code(action, code)
  local codes = M.injectable()[action]
  if not codes then return true end
  for _, c in ipairs(codes) do
    if c == code then return true end
  end
  return nil, action .. " does not answer " .. code .. check.did_you_mean(code, codes)
end

function M.new()
  return setmetatable({ queue = {} }, M)
end

function M:clear()
  self.queue = {}
end

function M:add(f)
  if type(f) ~= "table" or not KINDS[f.kind] then
    return nil, "unknown fault kind " .. tostring(type(f) == "table" and f.kind or f)
  end
  if f.count ~= nil and type(f.count) ~= "number" then return nil, "count must be a number" end
  if f.kind == "big" and type(f.bytes) ~= "number" then return nil, "big needs bytes" end
  if f.kind == "error" then
    if type(f.code) ~= "string" then return nil, "error needs code" end
    local ok, why = injectable_code(f.action, f.code)
    if not ok then return nil, why end
  end
  if f.kind == "field" and type(f.field) ~= "string" then return nil, "field needs field" end
  if f.kind == "delay" and type(f.seconds) ~= "number" then return nil, "delay needs seconds" end
  f.count = f.count or 1
  self.queue[#self.queue + 1] = f
  return true
end

-- Returns the first fault matching this action and consumes one use of it. With
-- `exact`, only faults naming this action match (downloads take only "_download").
function M:take(action, exact)
  for i, f in ipairs(self.queue) do
    if (f.action == nil and not exact) or f.action == action then
      if f.count > 0 then
        f.count = f.count - 1
        if f.count == 0 then table.remove(self.queue, i) end
      end
      return f
    end
  end
end

local function hex_decode(h)
  return (h:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local HTML = "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n"
  .. "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

-- Builds the response for a fault that replaces the normal one. `normal` is a
-- function producing the regular response (used by delay/reset/truncate).
-- request_id: a fresh RequestId for generated envelopes.
function M.respond(f, normal, request_id)
  local json = { ["Content-Type"] = "application/json" }
  local resp
  if f.kind == "delay" or f.kind == "field" then
    resp = normal(f)
    resp.delay = f.seconds
  elseif f.kind == "reset" then
    -- "before": close (RST) right after reading the request; "headers": after the headers.
    if f.when == "headers" then
      resp = normal()
      resp.reset = "headers"
    else
      resp = { status = 200, reset = "before" }
    end
  elseif f.kind == "truncate" then
    resp = normal()
    resp.truncate = true
  elseif f.kind == "status" then
    local status = f.status or 503
    resp = {
      status = status,
      headers = { ["Content-Type"] = f.content_type or "application/json" },
      body = f.body or cjson.encode({ Response = {
        Error = { Code = "InternalError", Message = "injected HTTP " .. status },
        RequestId = request_id } }),
    }
  elseif f.kind == "error" then
    resp = {
      status = f.status or 200, headers = json,
      body = cjson.encode({ Response = {
        Error = { Code = f.code, Message = f.message or ("injected " .. f.code) },
        RequestId = request_id } }),
    }
  elseif f.kind == "malformed_json" then
    resp = { status = 200, headers = json,
      body = '{"Response": {"BatchCnt": 3, "RequestId": "' .. request_id .. '", "Status": ' }
  elseif f.kind == "html" then
    local status = f.status or 502
    local reason = status == 200 and "OK" or (status == 502 and "Bad Gateway" or "Error")
    resp = { status = status, headers = { ["Content-Type"] = "text/html" },
      body = string.format(HTML, status, reason, status, reason) }
  elseif f.kind == "raw" then
    local headers = {}
    for k, v in pairs(f.headers or {}) do headers[k] = v end
    resp = { status = f.status or 200, headers = headers,
      body = f.body_hex and hex_decode(f.body_hex) or f.body or "" }
  elseif f.kind == "big" then
    -- A valid envelope padded with a string field to exactly `bytes` bytes when possible.
    local n = math.floor(f.bytes)
    local pre = '{"Response":{"RequestId":"' .. request_id .. '","Padding":"'
    local post = '"}}'
    local body
    if n >= #pre + #post then body = pre .. string.rep("x", n - #pre - #post) .. post
    else body = string.rep("x", n) end
    resp = { status = 200, headers = json, body = body }
  end
  if f.delay and f.kind ~= "delay" then resp.delay = f.delay end
  if f.close then resp.close = true end
  return resp
end

return M

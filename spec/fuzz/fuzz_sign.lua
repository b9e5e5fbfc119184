-- Harness of build/fuzz/fuzz_sign (spec/fuzz/fuzz_sign.c): arbitrary values and types for every field of
-- core.sign, core.call and core.describe_batch_production, starting from a valid request.
-- Input: 1 mode byte (0 sign, 1 call, 2 describe_batch_production), then records separated by 0x1e; a
-- record is a tag byte and a value. The tag picks the field ((tag % 32) % #FIELDS) and the kind (tag // 32):
-- 0-2 the value as a string, 3 a number, 4 a boolean, 5 a table or a function, 6 absent, 7 the value
-- repeated to 64 KB.
-- call and describe_batch_production never reach the network: call always gets params it cannot encode
-- (a function), checked after every other field; describe_batch_production always gets an empty
-- BatchProductionId, checked last. So their only possible outcome is nil, err.
-- luacheck: globals fuzz_one
local core = require("tencentcloud.iotexplorer.core")
local session = assert(core.new_session{})

local FIELDS = {
  "secret_id", "secret_key", "token", "region", "language", "service", "content_type", "signed_headers",
  "timestamp", "timeout", "connect_timeout", "endpoint", "host", "action", "version", "method", "query",
  "payload", "ProductId",
}
-- The string fields each function reads: each must be a non-empty string without CR, LF or NUL (or
-- absent, when optional) whenever the function gets past its checks.
local COMMON = { "secret_id", "secret_key", "token", "region", "language", "service", "content_type", "signed_headers" }
local function fields(...)
  local t = {}
  for _, name in ipairs(COMMON) do t[name] = true end
  for _, name in ipairs({ ... }) do t[name] = true end
  return t
end
local READS = {
  [0] = fields("host", "action", "version", "method", "query"),
  [1] = fields("endpoint", "action", "version"),
  [2] = fields("endpoint", "ProductId"),
}
local HEADERS = {
  Authorization = true, ["Content-Type"] = true, Host = true, ["X-TC-Action"] = true, ["X-TC-Version"] = true,
  ["X-TC-Timestamp"] = true, ["X-TC-Region"] = true, ["X-TC-Token"] = true, ["X-TC-Language"] = true,
  ["X-TC-RequestClient"] = true,
}
local NUMBERS = {
  0 / 0, math.huge, -math.huge, -1, 0, 0.5, 1.5, 2 ^ 53, 2 ^ 63, math.mininteger, math.maxinteger,
  1551113065, 1551113065.5, 86400, 86400.001, 253402300799, 253402300800, -0.0,
}

local function base()
  return {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    region = "ap-guangzhou", host = "iotexplorer.tencentcloudapi.com", action = "DescribeBatchProduction",
    version = "2019-04-23", timestamp = 1551113065, payload = "{}", endpoint = "https://127.0.0.1:9/",
    ProductId = "R32ONVL0EU",
  }
end

local function value_of(kind, v)
  if kind <= 2 then return v end
  if kind == 3 then return tonumber(v) or NUMBERS[#v % #NUMBERS + 1] end
  if kind == 4 then return #v % 2 == 0 end
  if kind == 5 then return (#v % 2 == 0) and { v } or print end
  if kind == 6 then return nil end
  return v:rep(65536 // math.max(#v, 1) + 1):sub(1, 65536)
end

local function valid_string(v) return type(v) == "string" and #v > 0 and not v:find("[\r\n%z]") end

-- True when every field the function reads is acceptable: strings, the timestamp and the timeouts.
local function all_valid(req, mode)
  for name in pairs(READS[mode]) do
    local v = req[name]
    if v ~= nil and not valid_string(v) then return false, name end
  end
  local ts = req.timestamp
  if ts ~= nil and not (math.type(ts) and ts >= 0 and ts <= 253402300799 and ts == math.floor(ts)) then
    return false, "timestamp"
  end
  for _, name in ipairs({ "timeout", "connect_timeout" }) do
    local v = req[name]
    if v ~= nil and not (type(v) == "number" and v > 0 and v <= 86400) then return false, name end
  end
  return true
end

local function check_error(res, err, label)
  assert(res == nil, label .. ": a result with an error")
  assert(type(err) == "table", label .. ": error is not a table")
  assert(type(err.code) == "string" and type(err.message) == "string", label .. ": error without code or message")
  assert(err.sent == false, label .. ": an input error claims the request was sent")
  if err.code == "ClientError.InvalidParameter" then
    assert(type(err.field) == "string", label .. ": InvalidParameter without field")
  end
end

function fuzz_one(data)
  if #data == 0 then return end
  local mode = data:byte(1) % 3
  local req = base()
  for record in data:sub(2):gmatch("[^\30]+") do
    local tag = record:byte(1)
    req[FIELDS[tag % 32 % #FIELDS + 1]] = value_of(tag // 32, record:sub(2))
  end

  if mode == 0 then
    local headers, info = core.sign(req)
    if headers == nil then return check_error(headers, info, "sign") end
    local ok, bad = all_valid(req, mode)
    assert(ok, "sign accepted an invalid " .. tostring(bad))
    for name, v in pairs(headers) do
      assert(HEADERS[name], "sign returned an unknown header " .. tostring(name))
      assert(type(v) == "string" and not v:find("[\r\n%z]"), "header " .. name .. " holds CR, LF or NUL")
    end
    assert(headers.Host == req.host, "Host is not the host given")
    assert(headers["X-TC-Action"] == req.action, "X-TC-Action is not the action given")
    assert(#info.signature == 64 and info.signature:match("^[0-9a-f]+$"), "signature is not 64 lowercase hex")
    assert(headers.Authorization:find(info.signature, 1, true), "Authorization lacks the signature")
    local again = select(2, core.sign(req))
    assert(again.signature == info.signature, "the same request signed twice differs")
  elseif mode == 1 then
    req.params = { f = print }
    local res, err = core.call(session, req)
    check_error(res, err, "call")
    if err.field == "params" then
      local ok, bad = all_valid(req, mode)
      assert(ok, "call accepted an invalid " .. tostring(bad))
      assert(req.endpoint:lower():find("^https?://[^/]+/?$"), "call accepted the endpoint " .. req.endpoint)
    end
  else
    req.BatchProductionId = ""
    local res, err = core.describe_batch_production(session, req)
    check_error(res, err, "describe_batch_production")
    if err.field == "BatchProductionId" then
      local ok, bad = all_valid(req, mode)
      assert(ok, "describe_batch_production accepted an invalid " .. tostring(bad))
      assert(req.endpoint:lower():find("^https?://[^/]+/?$"), "accepted the endpoint " .. req.endpoint)
    end
  end
end

-- Harness of build/fuzz/fuzz_sign (spec/fuzz/fuzz_sign.c): arbitrary values and types for every field of
-- core.sign, core.call and core.new_session, starting from a valid request.
-- Input: 1 mode byte (0 sign, 1 call, 2 new_session), then records separated by 0x1e; a record is a tag
-- byte and a value. The tag picks the field ((tag % 32) % #FIELDS) and the kind (tag // 32): 0-2 the value
-- as a string, 3 a number, 4 a boolean, 5 a table or a function, 6 absent, 7 the value repeated to 64 KB.
-- The invariant is the core's convention: it raises exactly when a field it reads is misused, never with a
-- secret key in the message; what it accepts makes headers without CR, LF or NUL. call never reaches the
-- network: it always gets params it cannot encode (a function), checked after every other field, so a call
-- that does not raise returns nil, err naming params.
-- luacheck: globals fuzz_one
local core = require("tencentcloud.iotexplorer.core")
local session = assert(core.new_session{ scheme = "https", host = "127.0.0.1", port = 9, region = "ap-guangzhou" })

local FIELDS = {
  "secret_id", "secret_key", "token", "region", "language", "service", "content_type", "signed_headers",
  "timestamp", "timeout", "connect_timeout", "scheme", "host", "action", "version", "method", "query",
  "payload", "port", "fresh_connection", "unsigned",
}
-- What each mode reads, and how: header values (no CR, LF, NUL), keys (any bytes), and the rest.
local HEADER, KEY = "header", "key"
local READS = {
  [0] = { secret_id = HEADER, secret_key = KEY, token = HEADER, region = HEADER, language = HEADER,
          service = HEADER, content_type = HEADER, signed_headers = HEADER, host = HEADER, action = HEADER,
          version = HEADER, method = HEADER, query = HEADER },
  [1] = { secret_id = HEADER, secret_key = KEY, token = HEADER, action = HEADER, version = HEADER },
  [2] = { region = HEADER, language = HEADER, service = HEADER, host = HEADER },
}
local REQUIRED = {
  [0] = { secret_id = true, secret_key = true, host = true, region = true, action = true, version = true },
  [1] = { secret_id = true, secret_key = true, action = true, version = true },
  [2] = { host = true, region = true },
}
local HEADERS = {
  Authorization = true, ["Content-Type"] = true, Host = true, ["X-TC-Action"] = true, ["X-TC-Version"] = true,
  ["X-TC-Timestamp"] = true, ["X-TC-Region"] = true, ["X-TC-Token"] = true, ["X-TC-Language"] = true,
  ["X-TC-RequestClient"] = true,
}
local NUMBERS = {
  0 / 0, math.huge, -math.huge, -1, 0, 0.5, 1.5, 2 ^ 53, 2 ^ 63, math.mininteger, math.maxinteger,
  1551113065, 1551113065.5, 86400, 86400.001, 253402300799, 253402300800, -0.0, 65535, 65536,
}

local function base(mode)
  if mode == 2 then return { scheme = "https", host = "iotexplorer.tencentcloudapi.com", region = "ap-guangzhou" } end
  return {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    region = "ap-guangzhou", host = "iotexplorer.tencentcloudapi.com", action = "DescribeBatchProduction",
    version = "2019-04-23", timestamp = 1551113065, payload = "{}",
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

local function whole(v, min, max) return math.type(v) ~= nil and v >= min and v <= max and v == math.floor(v) end
local function seconds(v) return v == nil or (type(v) == "number" and v > 0 and v <= 86400) end
local function optional_boolean(v) return v == nil or type(v) == "boolean" end

-- True when every field the mode reads is acceptable, else false and the first field that is not.
local function all_valid(req, mode)
  local unsigned = mode ~= 2 and req.unsigned == true
  if mode ~= 2 and not optional_boolean(req.unsigned) then return false, "unsigned" end
  for name, how in pairs(READS[mode]) do
    local v = req[name]
    local required = REQUIRED[mode][name] and not (unsigned and (name == "secret_id" or name == "secret_key"))
    if v == nil then
      if required then return false, name end
    elseif type(v) ~= "string" or v == "" or (how == HEADER and v:find("[\r\n%z]")) then
      return false, name
    end
  end
  if mode == 2 then
    if req.scheme ~= nil and req.scheme ~= "https" and req.scheme ~= "http" then return false, "scheme" end
    if req.host:find("[%s%c/?#@\\\127-\255]") then return false, "host" end
    if req.port ~= nil and not whole(req.port, 1, 65535) then return false, "port" end
    if not seconds(req.timeout) then return false, "timeout" end
    if not seconds(req.connect_timeout) then return false, "connect_timeout" end
    return true
  end
  if req.timestamp ~= nil and not whole(req.timestamp, 0, 253402300799) then return false, "timestamp" end
  if mode == 0 then
    local sh, method = req.signed_headers, req.method
    if sh ~= nil and sh ~= "content-type;host" and sh ~= "content-type;host;x-tc-action" then
      return false, "signed_headers"
    end
    if method ~= nil and method ~= "POST" and method ~= "GET" then return false, "method" end
    if method ~= "GET" and type(req.payload) ~= "string" then return false, "payload" end
  else
    if not seconds(req.timeout) then return false, "timeout" end
    if not optional_boolean(req.fresh_connection) then return false, "fresh_connection" end
  end
  return true
end

-- The value of a secret key never shows in an error.
local function check_raised(msg, req, label)
  assert(type(msg) == "string", label .. ": raised a non-string")
  local key = req.secret_key
  if type(key) == "string" and #key >= 8 then
    assert(not msg:find(key, 1, true), label .. ": the error holds the secret key")
  end
end

function fuzz_one(data)
  if #data == 0 then return end
  local mode = data:byte(1) % 3
  local req = base(mode)
  for record in data:sub(2):gmatch("[^\30]+") do
    local tag = record:byte(1)
    req[FIELDS[tag % 32 % #FIELDS + 1]] = value_of(tag // 32, record:sub(2))
  end
  if mode == 2 then   -- new_session reads only its own options: drop the others first
    local known = { scheme = 1, host = 1, port = 1, region = 1, language = 1, service = 1, timeout = 1,
      connect_timeout = 1 }
    for k in pairs(req) do if not known[k] then req[k] = nil end end
  end
  local valid, bad = all_valid(req, mode)

  if mode == 0 then
    local ok, headers, info = pcall(core.sign, req)
    if not ok then
      assert(not valid, "sign raised for a valid request: " .. tostring(headers))
      return check_raised(headers, req, "sign")
    end
    assert(valid, "sign accepted an invalid " .. tostring(bad))
    for name, v in pairs(headers) do
      assert(HEADERS[name], "sign returned an unknown header " .. tostring(name))
      assert(type(v) == "string" and not v:find("[\r\n%z]"), "header " .. name .. " holds CR, LF or NUL")
    end
    assert(headers.Host == req.host, "Host is not the host given")
    assert(headers["X-TC-Action"] == req.action, "X-TC-Action is not the action given")
    if req.unsigned then
      assert(headers.Authorization == "SKIP" and info == nil, "an unsigned request was signed")
      return
    end
    assert(#info.signature == 64 and info.signature:match("^[0-9a-f]+$"), "signature is not 64 lowercase hex")
    assert(headers.Authorization:find(info.signature, 1, true), "Authorization lacks the signature")
    local again = select(2, core.sign(req))
    assert(again.signature == info.signature, "the same request signed twice differs")
  elseif mode == 1 then
    req.params = { f = print }
    local ok, res, err = pcall(core.call, session, req)
    if not ok then
      assert(not valid, "call raised for a valid request: " .. tostring(res))
      return check_raised(res, req, "call")
    end
    assert(valid, "call accepted an invalid " .. tostring(bad))
    assert(res == nil and type(err) == "table" and err.field == "params" and err.sent == false,
      "call did not refuse the params it cannot encode")
  else
    local ok, s = pcall(core.new_session, req)
    if not ok then
      assert(not valid, "new_session raised for valid options: " .. tostring(s))
      return check_raised(s, req, "new_session")
    end
    assert(valid, "new_session accepted an invalid " .. tostring(bad))
    assert(s, "new_session failed for valid options")
    s:close()
  end
end

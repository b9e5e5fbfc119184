-- Harness of build/fuzz/fuzz_response (spec/fuzz/fuzz_response.c): response bytes -> the core's decoder,
-- through core._decode_response(body, http_status[, server_date]) (a test hook, -DTCIOT_TEST_HOOKS).
-- Input: 1 byte choosing the status (below 0xc0: 200; else one of STATUSES), then the body.
-- Invariants: never raises; a result only for status 200 and a JSON object whose Response is an object
-- without Error (or with "Error": null), and then no JSON null (cjson's lightuserdata) survives at any
-- depth and every whole number within 2^53 is an integer; otherwise nil and an error table with a string
-- code and message, sent = true, the status in http_status, and a ClientError code only when the body is
-- not an API error envelope (an Error object with a non-empty string Code).
-- luacheck: globals fuzz_one
local core = require("tencentcloud.iotexplorer.core")
local cjson = require("cjson.safe")
assert(core._decode_response, "core built without -DTCIOT_TEST_HOOKS: no _decode_response")

local STATUSES = { 500, 502, 503, 404, 400, 301, 302, 204, 100, 0, 999, 201 }
local decoder = cjson.new()
decoder.decode_max_depth(64)
decoder.decode_invalid_numbers(false)  -- as the core's: nan, inf and hex numbers are not JSON

-- A literal past the doubles (1e400) reads as an infinity: the core refuses such a body as not JSON.
local function has_infinity(t)
  for _, v in pairs(t) do
    if v == math.huge or v == -math.huge or (type(v) == "table" and has_infinity(v)) then return true end
  end
  return false
end

local function walk(t, depth)
  assert(depth <= 64, "result nested deeper than the decoder allows")
  for k, v in pairs(t) do
    assert(type(k) ~= "userdata", "a null key survived")
    local tv = type(v)
    assert(tv ~= "userdata", "a JSON null survived normalise")
    if tv == "table" then
      walk(v, depth + 1)
    elseif tv == "number" and math.type(v) == "float" and v == math.floor(v) and math.abs(v) <= 2 ^ 53 then
      error("a whole number " .. string.format("%.17g", v) .. " stayed a float")
    end
  end
end

function fuzz_one(data)
  if #data == 0 then return end
  local b = data:byte(1)
  local status = b < 0xc0 and 200 or STATUSES[b % #STATUSES + 1]
  local body = data:sub(2)
  local res, err = core._decode_response(body, status, (b % 2 == 0) and 1551113065 or nil)
  local doc = decoder.decode(body)
  if type(doc) == "table" and has_infinity(doc) then doc = nil end
  local envelope = type(doc) == "table" and type(doc.Response) == "table"
  if res ~= nil then
    assert(err == nil, "a result and an error")
    assert(status == 200, "a result for status " .. status)
    local e = envelope and doc.Response.Error
    assert(envelope and (e == nil or e == cjson.null), "a result from a body that is not a success envelope")
    assert(type(res) == "table" and res.Error == nil, "result is not the Response table")
    walk(res, 1)
    return
  end
  assert(type(err) == "table", "error is not a table")
  assert(type(err.code) == "string" and #err.code > 0, "error without code")
  assert(type(err.message) == "string", "error without message")
  assert(err.sent == true, "a decoded response must say it was sent")
  if status > 0 then assert(err.http_status == status, "http_status missing or wrong") end
  local e = envelope and type(doc.Response.Error) == "table" and doc.Response.Error
  local api_error = e and type(e.Code) == "string" and #e.Code > 0
  if api_error then
    assert(err.code == doc.Response.Error.Code, "the API error code was not passed through")
  else
    assert(err.code:find("^ClientError%."), "a non-envelope body gave the code " .. err.code)
    if status ~= 200 then assert(err.code == "ClientError.HttpStatusCodeError", "non-200 gave " .. err.code) end
  end
end

-- What every room of the emulator puts on the wire: request ids, JSON bodies as the service writes them,
-- the API envelope, control answers, and query strings.
local cjson = require("cjson.safe")
local rand = require("openssl.rand")

local M = {}

local function hex(raw)
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.hex = hex

function M.request_id()
  local h = hex(rand.bytes(16))
  return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

-- Debian's lua-cjson has no empty-array support: encode a marker and patch it.
M.EMPTY_ARRAY = "\0emulator-empty-array\0"
local EMPTY_ARRAY_PATTERN = assert(cjson.encode(M.EMPTY_ARRAY)):gsub("%p", "%%%0")

-- cjson escapes "/" as "\/"; the service does not, and URLs read better without.
-- (A literal backslash is encoded as "\\", so "\/" is always an escaped slash.)
function M.encode(value)
  local body = assert(cjson.encode(value))
  return (body:gsub("\\/", "/"):gsub(EMPTY_ARRAY_PATTERN, "[]"))
end

-- The API answers errors with HTTP 200 too; the presence of Error tells them apart.
function M.envelope(fields, rid)
  fields.RequestId = rid
  return {
    status = 200,
    headers = { ["Content-Type"] = "application/json" },
    body = M.encode({ Response = fields }),
  }
end

function M.json_response(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = M.encode(value) }
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- "a=1&b=x%20y" -> { a = "1", b = "x y" }; a key given twice keeps its last value.
function M.query_params(q)
  local out = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[unescape(k)] = unescape(v)
  end
  return out
end

return M

-- TC3-HMAC-SHA256 verification, written independently of the C client so that the
-- emulator can catch signing bugs. The pure functions are exported for the specs.
local digest = require("openssl.digest")
local hmac = require("openssl.hmac")

local M = {}

local function hex(raw)
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.hex = hex

function M.sha256_hex(data)
  return hex(digest.new("sha256"):final(data))
end

function M.hmac_sha256(key, msg)
  return hmac.new(key, "sha256"):final(msg)
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- headers: map of lowercase name -> received value; signed_headers: "a;b;c".
-- The official demo lowercases the x-tc-action value; everything else is only trimmed.
function M.canonical_headers(headers, signed_headers)
  local lines = {}
  for name in signed_headers:gmatch("[^;]+") do
    local value = trim(headers[name] or "")
    if name == "x-tc-action" then value = value:lower() end
    lines[#lines + 1] = name .. ":" .. value .. "\n"
  end
  return table.concat(lines)
end

function M.canonical_request(method, path, query, headers, signed_headers, body)
  return table.concat({
    method, path, query or "",
    M.canonical_headers(headers, signed_headers),
    signed_headers,
    M.sha256_hex(body or ""),
  }, "\n")
end

function M.string_to_sign(timestamp, date, service, canonical_request)
  return table.concat({
    "TC3-HMAC-SHA256", tostring(timestamp),
    date .. "/" .. service .. "/tc3_request",
    M.sha256_hex(canonical_request),
  }, "\n")
end

function M.signature(secret_key, date, service, string_to_sign)
  local k_date = M.hmac_sha256("TC3" .. secret_key, date)
  local k_service = M.hmac_sha256(k_date, service)
  local k_signing = M.hmac_sha256(k_service, "tc3_request")
  return hex(M.hmac_sha256(k_signing, string_to_sign))
end

-- Parses "TC3-HMAC-SHA256 Credential=id/date/svc/tc3_request, SignedHeaders=a;b, Signature=hex".
-- Returns a table or nil, reason.
function M.parse_authorization(value)
  if type(value) ~= "string" then return nil, "missing Authorization" end
  local algorithm, rest = value:match("^%s*(%S+)%s+(.-)%s*$")
  if algorithm ~= "TC3-HMAC-SHA256" then return nil, "unsupported algorithm" end
  local fields = {}
  for part in rest:gmatch("[^,]+") do
    local k, v = part:match("^%s*([%w]+)=(.-)%s*$")
    if not k then return nil, "malformed Authorization" end
    fields[k] = v
  end
  local cred, signed, sig = fields.Credential, fields.SignedHeaders, fields.Signature
  if not (cred and signed and sig) then return nil, "malformed Authorization" end
  local id, date, service, terminator = cred:match("^([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
  if not id then return nil, "malformed Credential" end
  if not sig:match("^%x+$") or #sig ~= 64 then return nil, "malformed Signature" end
  return {
    secret_id = id, date = date, service = service, terminator = terminator,
    signed_headers = signed, signature = sig:lower(),
  }
end

-- Checks the SignedHeaders list: sorted, lowercase, unique, contains content-type
-- and host, and every signed header was actually received.
function M.check_signed_headers(signed_headers, headers)
  local seen, prev = {}, nil
  for name in signed_headers:gmatch("[^;]+") do
    if name ~= name:lower() then return false, "SignedHeaders must be lowercase" end
    if prev and name <= prev then return false, "SignedHeaders must be sorted and unique" end
    if headers[name] == nil then return false, "signed header " .. name .. " was not sent" end
    seen[name], prev = true, name
  end
  if not (seen["content-type"] and seen["host"]) then
    return false, "SignedHeaders must include content-type and host"
  end
  return true
end

-- Full verification of a received request. req = {method, path, query, headers, body};
-- auth = parse_authorization() result; secret_key of auth.secret_id; timestamp string.
-- Returns true or false, reason, expected_signature.
function M.verify(req, auth, secret_key, timestamp)
  local ok, why = M.check_signed_headers(auth.signed_headers, req.headers)
  if not ok then return false, why end
  local cr = M.canonical_request(req.method, req.path, req.query, req.headers, auth.signed_headers, req.body)
  local sts = M.string_to_sign(timestamp, auth.date, auth.service, cr)
  local expected = M.signature(secret_key, auth.date, auth.service, sts)
  if expected ~= auth.signature then return false, "signature mismatch", expected end
  return true
end

return M

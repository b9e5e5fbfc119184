-- Authentication of API requests: the TC3-HMAC-SHA256 signature (verified by tc3.lua, which shares no code
-- with the client's signer), the timestamp window, the credential scope, and the session token of
-- temporary credentials (the fixture's, and those the STS room issued, which expire by the emulator clock).
local tc3 = require("tencentcloud.iotexplorer.emulator.tc3")

local M = {}

M.MAX_SKEW = 300

-- Verifies the signature over the Host as sent, then over the host without its port: the Node SDK signs
-- the endpoint's host name alone but sends `Host: name:port`; the Python SDK signs the host as given. On
-- the service's own port 443 both agree, so the service accepts both.
local function verify(req, auth, secret_key, timestamp)
  local ok, why = tc3.verify(req, auth, secret_key, timestamp)
  if ok or why ~= "signature mismatch" then return ok, why end
  local host = req.headers.host or ""
  local bare = host:match("^(.-):%d+$")
  if not bare or bare == "" then return ok, why end
  local headers = {}
  for k, v in pairs(req.headers) do headers[k] = v end
  headers.host = bare
  return tc3.verify({ method = req.method, path = req.path, query = req.query, headers = headers, body = req.body },
    auth, secret_key, timestamp)
end

-- Returns the credential record (with .secret_id) or nil, code, message. `service` is the name the
-- credential scope must carry (iotexplorer or sts); `state` holds the credentials and the clock.
function M.authenticate(state, req, timestamp, service)
  local h = req.headers
  local auth, why = tc3.parse_authorization(h.authorization)
  if not auth then return nil, "AuthFailure.SignatureFailure", "Invalid Authorization: " .. why .. "." end
  if auth.service ~= service or auth.terminator ~= "tc3_request" then
    return nil, "AuthFailure.SignatureFailure", "Credential scope must be <date>/" .. service .. "/tc3_request."
  end
  local cred = state.credentials[auth.secret_id]
  if not cred or cred.revoked then return nil, "AuthFailure.SecretIdNotFound", "The SecretId is not found." end
  local now = state:clock()
  if math.abs(timestamp - now) > M.MAX_SKEW then
    return nil, "AuthFailure.SignatureExpire", string.format(
      "Signature expired. Timestamp %d, server time %d, tolerance %ds.", timestamp, math.floor(now), M.MAX_SKEW)
  end
  if auth.date ~= os.date("!%Y-%m-%d", timestamp) then
    return nil, "AuthFailure.SignatureFailure", "Credential date must be the UTC date of X-TC-Timestamp."
  end
  local ok, reason = verify(req, auth, cred.secret_key, h["x-tc-timestamp"])
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
  if cred.expires_at and now >= cred.expires_at then
    return nil, "AuthFailure.TokenFailure", "The temporary credentials have expired."
  end
  return cred
end

return M

-- The STS room: the emulator also answers as sts.tencentcloudapi.com (service `sts`, version 2018-08-13),
-- at the same URL; the action name picks the room. It issues temporary credentials that the iotexplorer
-- actions then accept with their X-TC-Token, until they expire by the emulator clock or are revoked.
--
--   AssumeRole                 TC3-signed (credential scope <date>/sts/tc3_request) with a fixture
--                              credential; RoleArn must be a fixture role.
--   AssumeRoleWithWebIdentity  unsigned (`Authorization: SKIP`); ProviderId must be a fixture provider and
--                              WebIdentityToken one of its tokens; RoleArn a fixture role (and one of the
--                              provider's `roles` when it lists any).
-- Both answer { Credentials = { TmpSecretId, TmpSecretKey, Token }, ExpiredTime (unix seconds),
-- Expiration (ISO 8601, UTC) } for DurationSeconds (default 7200 or the role's max_duration when shorter;
-- more than max_duration answers InvalidParameter.OverTimeError).
--
-- Fixture (merged with the defaults in defaults.lua unless "defaults": false):
--   "sts": { "roles":     [{ "RoleArn": "qcs::cam::uin/1:roleName/r", "max_duration": 43200 }],
--            "providers": [{ "ProviderId": "p", "tokens": ["jwt..."], "roles": ["qcs::cam::..."] }] }
-- Control routes (see control.lua):
--   GET  /_emulator/sts                 { issued = [{ TmpSecretId, RoleArn, RoleSessionName, ExpiredTime,
--                                         revoked }], by_action = { AssumeRole = n, ... } } (no keys)
--   POST /_emulator/sts/revoke          { "TmpSecretId": "..." } or { "all": true }: later calls with those
--                                       keys answer AuthFailure.SecretIdNotFound
--   POST /_emulator/sts/expire          { "TmpSecretId": "..." } or { "all": true }: the keys expire now, so
--                                       calls answer AuthFailure.TokenFailure
--   POST /_emulator/config {"clock_skew": N} moves the clock every expiry is judged by.
local rand = require("openssl.rand")
local check = require("tencentcloud.iotexplorer.check")
local api = require("tencentcloud.iotexplorer.actions")
local wire = require("tencentcloud.iotexplorer.emulator.wire")

local M = {}

M.SERVICE = api.sts.SERVICE
M.VERSION = api.sts.VERSION
M.DEFAULT_DURATION = api.sts.DEFAULT_DURATION
M.MAX_DURATION = api.sts.MAX_DURATION
M.actions = api.sts.by_name

local ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function random_text(n)
  local bytes, out = rand.bytes(n), {}
  for i = 1, n do
    local k = bytes:byte(i) % #ID_CHARS + 1
    out[i] = ID_CHARS:sub(k, k)
  end
  return table.concat(out)
end

local function issue(emu, p)
  local state = emu.state
  local role = state.roles[p.RoleArn]
  if not role then
    return nil, "ResourceNotFound.RoleNotFound", "The role " .. p.RoleArn .. " does not exist."
  end
  if not p.RoleSessionName:match("^[%w+=,.@_-]+$") or #p.RoleSessionName < 2 or #p.RoleSessionName > 128 then
    return nil, "InvalidParameter.ParamError", "RoleSessionName must be 2 to 128 characters of [\\w+=,.@_-]."
  end
  -- Without DurationSeconds: 7200 s, or the role's maximum when that is shorter.
  local duration = p.DurationSeconds or math.min(M.DEFAULT_DURATION, role.max_duration)
  if duration > role.max_duration then
    return nil, "InvalidParameter.OverTimeError",
      "DurationSeconds exceeds the role's maximum of " .. role.max_duration .. " s."
  end
  local now = math.floor(state:clock())
  local cred = {
    secret_id = "AKID" .. random_text(32), secret_key = random_text(32), token = random_text(96),
    expires_at = now + duration, issued = true, RoleArn = p.RoleArn, RoleSessionName = p.RoleSessionName,
  }
  state.credentials[cred.secret_id] = cred
  state.issued[#state.issued + 1] = cred
  emu.counters.c.sts.issued = emu.counters.c.sts.issued + 1
  return {
    Credentials = { TmpSecretId = cred.secret_id, TmpSecretKey = cred.secret_key, Token = cred.token },
    ExpiredTime = cred.expires_at,
    Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", cred.expires_at),
  }
end

local handlers = {}

handlers.AssumeRole = issue

function handlers.AssumeRoleWithWebIdentity(emu, p)
  local provider = emu.state.providers[p.ProviderId]
  if not provider then
    return nil, "InvalidParameter.ParamError", "The identity provider " .. p.ProviderId .. " does not exist."
  end
  if not provider.tokens[p.WebIdentityToken] then
    return nil, "InvalidParameter.WebIdentityTokenError", "The web identity token is not valid."
  end
  if #provider.roles > 0 then
    local allowed = false
    for _, arn in ipairs(provider.roles) do allowed = allowed or arn == p.RoleArn end
    if not allowed then
      return nil, "UnauthorizedOperation", "The provider may not assume role " .. p.RoleArn .. "."
    end
  end
  return issue(emu, p)
end

-- Runs an STS action on decoded JSON params. Returns the fields, or nil, code, message.
function M.run(emu, name, params)
  local by_action = emu.counters.c.sts.by_action
  by_action[name] = (by_action[name] or 0) + 1
  local checked, err = check.params(M.actions[name], params)
  if not checked then
    return nil, api.COMMON_PARAMETER_ERRORS[err.kind] or "InvalidParameter", err.message
  end
  return handlers[name](emu, checked)
end

-- Control: the issued credentials without their keys, and revocation or early expiry.
function M.view(emu)
  local out = {}
  for i, c in ipairs(emu.state.issued) do
    out[i] = { TmpSecretId = c.secret_id, RoleArn = c.RoleArn, RoleSessionName = c.RoleSessionName,
      ExpiredTime = c.expires_at, revoked = c.revoked == true }
  end
  if #out == 0 then out = wire.EMPTY_ARRAY end
  return { issued = out, by_action = emu.counters.c.sts.by_action, issued_count = emu.counters.c.sts.issued,
    revoked_count = emu.counters.c.sts.revoked }
end

local function each_issued(emu, body, fn)
  if type(body) ~= "table" or (body.all ~= true and type(body.TmpSecretId) ~= "string") then
    return nil, "give TmpSecretId or all = true"
  end
  local n = 0
  for _, c in ipairs(emu.state.issued) do
    if body.all == true or c.secret_id == body.TmpSecretId then fn(c); n = n + 1 end
  end
  if n == 0 and body.all ~= true then return nil, "no such issued TmpSecretId" end
  return n
end

function M.revoke(emu, body)
  return each_issued(emu, body, function(c)
    if not c.revoked then emu.counters.c.sts.revoked = emu.counters.c.sts.revoked + 1 end
    c.revoked = true
  end)
end

function M.expire(emu, body)
  local now = math.floor(emu.state:clock())
  return each_issued(emu, body, function(c) c.expires_at = math.min(c.expires_at, now) end)
end

return M

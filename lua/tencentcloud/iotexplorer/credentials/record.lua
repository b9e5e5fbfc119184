-- What every credential source shares: the credential record, the checks of its values, the error, files.
--
-- A source (provider) is a table { name = "environment", fetch = function(self) ... end } whose fetch returns
--   record                      the keys (see record.new)
--   nil, reason                 nothing here; the chain goes on and lists `reason` if no source yields
--   nil, reason, true           something is configured but broken: the chain stops with `reason`
-- Reasons name files, variables and roles, never a secret.

local errors = require("tencentcloud.iotexplorer.errors")

local record = {}

-- Temporary keys are never used within this many seconds of their expiry.
record.REFRESH_BEFORE = 300

function record.error(message)
  return errors.new(errors.CREDENTIAL_ERROR, message, { sent = false })
end

-- Refuses what would only fail later as AuthFailure.SignatureFailure. `label` names the value (never the
-- value itself).
function record.check_value(label, value, optional)
  if value == nil and optional then
    return true
  end
  if type(value) ~= "string" then
    return nil, label .. " must be a string"
  end
  if value == "" then
    if optional then
      return true
    end
    return nil, label .. " is empty"
  end
  if value:find("^%s") or value:find("%s$") then
    return nil, label .. " has leading or trailing whitespace; remove it"
      .. " (a key pasted with stray spaces fails with AuthFailure.SignatureFailure)"
  end
  if value:find("%c") then
    return nil, label .. " contains a control character"
  end
  -- Keys and tokens are printable ASCII; anything else only fails later, as AuthFailure.
  if value:find("[^\33-\126]") then
    return nil, label .. " contains a byte that is not printable ASCII"
  end
  return true
end

-- Shows which source a record came from, never its keys.
local Record = {}
Record.__index = Record
function Record.__tostring(r)
  return "credentials from " .. tostring(r.source)
end

-- A checked record: { secret_id, secret_key, token?, expiration?, refresh_at?, source }. `where` prefixes the
-- names in a message ("TENCENTCLOUD_" or "profile file ... [x]: "). expiration: Unix seconds; refresh_at: when
-- to fetch new keys (default expiration - REFRESH_BEFORE). Returns record or nil, message.
function record.new(source, id, key, token, expiration, where, refresh_at)
  where = where or ""
  local ok, msg = record.check_value(where .. "secret_id", id)
  if ok then ok, msg = record.check_value(where .. "secret_key", key) end
  if ok then ok, msg = record.check_value(where .. "token", token, true) end
  if not ok then
    return nil, msg
  end
  if expiration ~= nil and (type(expiration) ~= "number" or expiration ~= expiration) then
    return nil, where .. "expiry must be a number (Unix seconds)"
  end
  if token == "" then
    token = nil
  end
  local usable_until = expiration and expiration - record.REFRESH_BEFORE
  if refresh_at == nil or (usable_until and refresh_at > usable_until) then
    refresh_at = usable_until
  end
  return setmetatable({ secret_id = id, secret_key = key, token = token, expiration = expiration,
    refresh_at = refresh_at, usable_until = usable_until, source = source }, Record)
end

function record.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

-- The path as a person knows it: the home folder shown as ~.
function record.display_path(path, home)
  if home and home ~= "" and path:sub(1, #home + 1) == home .. "/" then
    return "~" .. path:sub(#home + 1)
  end
  return path
end

-- A variable's value, with "" read as unset.
function record.env(getenv, name)
  local v = getenv(name)
  if v == "" then
    return nil
  end
  return v
end

return record

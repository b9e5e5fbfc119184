-- TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, and the session token as the SDKs spell it
-- (TENCENTCLOUD_SESSION_TOKEN) or as tccli does (TENCENTCLOUD_TOKEN). Read once, when the chain is built.
local record = require("tencentcloud.iotexplorer.credentials.record")

local environment = {}

function environment.new(ctx)
  local getenv = ctx.getenv
  local id = record.env(getenv, "TENCENTCLOUD_SECRET_ID")
  local key = record.env(getenv, "TENCENTCLOUD_SECRET_KEY")
  local c, err, fatal
  if not id and not key then
    err = "TENCENTCLOUD_SECRET_ID/KEY not set"
  elseif not id or not key then
    err, fatal = "set both TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or neither", true
  else
    local token = record.env(getenv, "TENCENTCLOUD_SESSION_TOKEN") or record.env(getenv, "TENCENTCLOUD_TOKEN")
    c, err = record.new("environment", id, key, token, nil, "TENCENTCLOUD_")
    fatal = c == nil
  end
  return { name = "environment", fetch = function() return c, err, fatal end }
end

return environment

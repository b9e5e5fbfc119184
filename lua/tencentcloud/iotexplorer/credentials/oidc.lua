-- AssumeRoleWithWebIdentity (OIDC), sent unsigned: TKE's TKE_PROVIDER_ID, TKE_WEB_IDENTITY_TOKEN_FILE,
-- TKE_ROLE_ARN and TKE_REGION, or the options oidc_provider_id, oidc_token_file and role_arn. The token file is
-- read again at every refresh (TKE rotates it); its contents never appear in a message.
local record = require("tencentcloud.iotexplorer.credentials.record")
local sts = require("tencentcloud.iotexplorer.credentials.sts")

local oidc = {}

-- True when the options ask for OIDC (then it is the only source).
function oidc.explicit(o)
  return o.oidc_provider_id ~= nil or o.oidc_token_file ~= nil
end

function oidc.new(ctx)
  local o, getenv = ctx.o, ctx.getenv
  local explicit = oidc.explicit(o)
  local provider_id, token_file, arn, region
  if explicit then
    provider_id, token_file, arn = o.oidc_provider_id, o.oidc_token_file, o.role_arn
    region = o.sts_region
  else
    provider_id = record.env(getenv, "TKE_PROVIDER_ID")
    token_file = record.env(getenv, "TKE_WEB_IDENTITY_TOKEN_FILE")
    arn = record.env(getenv, "TKE_ROLE_ARN")
    region = record.env(getenv, "TKE_REGION") or o.sts_region
  end
  local provider = { name = "OIDC (TKE)", dynamic = true }
  if not (provider_id and token_file and arn) then
    local why = "TKE_PROVIDER_ID, TKE_WEB_IDENTITY_TOKEN_FILE and TKE_ROLE_ARN not all set"
    provider.fetch = function() return nil, why end
    provider.dynamic = false
    return provider
  end
  local name = o.role_session_name or sts.session_name(ctx.time)
  local duration = o.role_duration or sts.DEFAULT_DURATION
  local shown = record.display_path(token_file, ctx.home)
  local client = ctx.sts()

  function provider.fetch()
    local token = record.read_file(token_file)
    if not token then
      return nil, "the web identity token file " .. shown .. " cannot be read", explicit
    end
    token = token:match("^%s*(.-)%s*$")
    if token == "" then
      return nil, "the web identity token file " .. shown .. " is empty", explicit
    end
    local fresh, why = client.call("AssumeRoleWithWebIdentity", {
      ProviderId = provider_id, WebIdentityToken = token, RoleArn = arn, RoleSessionName = name,
      DurationSeconds = duration,
    }, nil, "oidc role " .. arn, region)
    if not fresh then
      return nil, "oidc role " .. arn .. ": " .. why, explicit
    end
    return fresh
  end
  return provider
end

return oidc

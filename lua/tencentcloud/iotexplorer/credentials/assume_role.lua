-- AssumeRole: temporary keys for role_arn (or TENCENTCLOUD_ROLE_ARN), asked of STS with the credential the
-- rest of the chain yields (its own cached chain: `base`). Renewed at ExpiredTime - 0.9 * duration, or 300 s
-- before expiry, whichever comes first.
local record = require("tencentcloud.iotexplorer.credentials.record")
local sts = require("tencentcloud.iotexplorer.credentials.sts")

local assume_role = {}

-- The role to assume, or nil when none is configured.
function assume_role.arn(ctx)
  return ctx.o.role_arn or record.env(ctx.getenv, "TENCENTCLOUD_ROLE_ARN")
end

function assume_role.new(ctx, base)
  local o = ctx.o
  local arn = assume_role.arn(ctx)
  local name = o.role_session_name or record.env(ctx.getenv, "TENCENTCLOUD_ROLE_SESSION_NAME")
    or sts.session_name(ctx.time)
  local params = {
    RoleArn = arn, RoleSessionName = name, DurationSeconds = o.role_duration or sts.DEFAULT_DURATION,
    ExternalId = o.role_external_id, Policy = o.role_policy,
  }
  local client = ctx.sts()
  local provider = { name = "AssumeRole " .. arn, dynamic = true, base = base }

  function provider.fetch()
    -- Keys the service rejects may be revoked base keys: fetched again once.
    for try = 1, 2 do
      local c, err = base:get()
      if not c then
        return nil, "role " .. arn .. ": no credential to assume it with: " .. err.message, true
      end
      local fresh, why, code = client.call("AssumeRole", params, c, "role " .. arn .. " (assumed with "
        .. c.source .. ")")
      if fresh then
        return fresh
      end
      if try == 2 or type(code) ~= "string" or not code:find("^AuthFailure") or not base:invalidate() then
        return nil, "role " .. arn .. ": " .. why, true
      end
    end
  end
  return provider
end

return assume_role

-- credential_provider = function() return id, key, token, expiry end: asked on first use and again when its
-- keys near their expiry (or were rejected). Returning nil (and no message) lets the chain go on.
local record = require("tencentcloud.iotexplorer.credentials.record")

local custom = {}

function custom.new(ctx)
  local fn = ctx.o.credential_provider
  if fn == nil then
    return nil
  end
  return {
    name = "credential_provider",
    dynamic = true,
    fetch = function()
      local ok, id, key, token, expiry = pcall(fn)
      if not ok then
        return nil, "credential_provider failed: " .. tostring(id), true
      end
      if id == nil then
        if key ~= nil then
          return nil, "credential_provider failed: " .. tostring(key), true
        end
        return nil, "credential_provider returned nothing"
      end
      local c, err = record.new("credential_provider", id, key, token, expiry, "credential_provider: ")
      if not c then
        return nil, err, true
      end
      return c
    end,
  }
end

return custom

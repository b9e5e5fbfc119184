-- Keys given to iot.new as secret_id, secret_key and token: checked at once, used as they are.
local record = require("tencentcloud.iotexplorer.credentials.record")

local static = {}

-- Returns a provider, nil when no key was given, or nil, message when only part of them was.
function static.new(ctx)
  local o = ctx.o
  if o.secret_id == nil and o.secret_key == nil and o.token == nil then
    return nil
  end
  if o.secret_id == nil or o.secret_key == nil then
    return nil, "give both secret_id and secret_key (or neither, to use the credential chain)"
  end
  local c, err = record.new("explicit", o.secret_id, o.secret_key, o.token)
  if not c then
    return nil, err
  end
  return { name = "explicit keys", fetch = function() return c end }
end

return static

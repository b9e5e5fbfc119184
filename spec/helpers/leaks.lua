-- Collects everything a spec file's clients say (error strings, error fields,
-- logger records, tostring(client)) so the file can assert at the end that no
-- secret key or token ever appeared in any of it.
local M = {}
M.__index = M

function M.new()
  return setmetatable({ texts = {}, records = {} }, M)
end

local function flatten(v, out, depth)
  depth = depth or 0
  if type(v) == "table" and depth < 4 then
    for k, x in pairs(v) do
      out[#out + 1] = tostring(k)
      flatten(x, out, depth + 1)
    end
  else
    out[#out + 1] = tostring(v)
  end
end

-- Remembers any value: an error object, a result, a string, a client.
function M:see(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    self.texts[#self.texts + 1] = tostring(v)
    flatten(v, self.texts)
  end
  return ...
end

-- A logger for iot.new that keeps every record.
function M:logger()
  return function(record)
    self.records[#self.records + 1] = record
    self:see(record)
  end
end

-- Returns the first text that contains one of the secrets, or nil.
function M:find(secrets)
  for _, text in ipairs(self.texts) do
    for _, secret in ipairs(secrets) do
      if text:find(secret, 1, true) then
        return text
      end
    end
  end
end

return M

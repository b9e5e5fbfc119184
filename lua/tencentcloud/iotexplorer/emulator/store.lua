-- The object store that holds each finished batch's device file, reached through pre-signed links in the
-- spirit of a COS URL: /_download/<ProductId>_<BatchProductionId>.csv?expires=<unix>&sig=<hex>. A link
-- works until `expires` by the emulator clock; a changed link answers 403 with COS's XML error body.
local tc3 = require("tencentcloud.iotexplorer.emulator.tc3")
local wire = require("tencentcloud.iotexplorer.emulator.wire")

local M = {}
M.__index = M

-- state: the emulated world (batches, devices, clock, download_ttl); secret: the key links are signed with.
function M.new(state, secret)
  return setmetatable({ state = state, secret = secret }, M)
end

function M:sig(name, expires)
  return tc3.hex(tc3.hmac_sha256(self.secret, name .. "\n" .. tostring(expires)))
end

function M:url(base_url, b)
  local name = b.ProductId .. "_" .. b.BatchProductionId .. ".csv"
  local state = self.state
  local expires = math.floor(state:clock() + (tonumber(state.config.download_ttl) or 900))
  return string.format("%s/_download/%s?expires=%d&sig=%s", base_url, name, expires, self:sig(name, expires))
end

function M:csv(b)
  local rows = { "ProductId,DeviceName,DeviceSecret" }
  for _, d in ipairs(self.state:devices(b)) do
    rows[#rows + 1] = b.ProductId .. "," .. d.name .. "," .. d.secret
  end
  return table.concat(rows, "\n") .. "\n"
end

local function cos_error(status, code, message, resource)
  return {
    status = status,
    headers = { ["Content-Type"] = "application/xml" },
    body = "<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n\t<Code>" .. code .. "</Code>\n\t<Message>"
      .. message .. "</Message>\n\t<Resource>" .. resource .. "</Resource>\n\t<RequestId>"
      .. wire.request_id() .. "</RequestId>\n</Error>\n",
  }
end

-- Answers GET/HEAD /_download/...; nil means "not a download path".
function M:handle(req)
  local name = req.path:match("^/_download/([^/]+%.csv)$")
  if not name or (req.method ~= "GET" and req.method ~= "HEAD") then
    return cos_error(404, "NoSuchKey", "The specified key does not exist.", req.path)
  end
  local q = wire.query_params(req.query)
  local expires = tonumber(q.expires or "")
  if not expires or q.sig ~= self:sig(name, q.expires) then
    return cos_error(403, "AccessDenied", "Access Denied.", req.path)
  end
  if expires < self.state:clock() then
    return cos_error(403, "AccessDenied", "Request has expired", req.path)
  end
  local batch_id = name:match("_(LC%-[^_]+)%.csv$") or name:match("^[^_]+_(.+)%.csv$")
  local b = batch_id and self.state.batches[batch_id]
  if not b then return cos_error(404, "NoSuchKey", "The specified key does not exist.", req.path) end
  return { status = 200, headers = { ["Content-Type"] = "text/csv" }, body = self:csv(b) }
end

return M

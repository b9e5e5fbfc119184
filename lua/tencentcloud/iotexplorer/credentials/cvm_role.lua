-- The CAM role bound to a CVM instance, from its metadata service: the role's name first, then its temporary
-- keys (refreshed by the chain 300 s before they expire). Asked on first use, never when the chain is built.
local record = require("tencentcloud.iotexplorer.credentials.record")

local cvm_role = {}

cvm_role.DEFAULT_ENDPOINT = "http://metadata.tencentyun.com"
cvm_role.TIMEOUT = 1
cvm_role.MAX_BYTES = 65536
local ROLE_PATH = "/latest/meta-data/cam/security-credentials/"

-- GET url through the core's transport: status, body, or nil, message. Kept as a function of this module
-- (and exported as credentials.http_get) because nginx runs it in a worker thread by name.
function cvm_role.http_get(url, timeout)
  local core = require("tencentcloud.iotexplorer.core")
  if type(core.http_get) ~= "function" then
    return nil, "this build of the core has no http_get"
  end
  local body, status = core.http_get(url, { timeout = timeout, connect_timeout = timeout,
    max_bytes = cvm_role.MAX_BYTES })
  if body == nil then
    local err = status
    return nil, type(err) == "table" and tostring(err.message or err.code) or tostring(err)
  end
  return status, body
end

-- Checks o.metadata_endpoint: nil (the default), false (no CVM role) or http://host[:port].
function cvm_role.check(o)
  local endpoint = o.metadata_endpoint
  if endpoint and (type(endpoint) ~= "string" or not endpoint:find("^http://[^/%c%s]+/*$")) then
    return "metadata_endpoint must be an http:// URL or false"
  end
end

function cvm_role.new(ctx)
  local endpoint = ctx.o.metadata_endpoint
  if endpoint == nil then
    endpoint = cvm_role.DEFAULT_ENDPOINT
  end
  if endpoint == false then
    return { name = "CVM role", fetch = function() return nil, "off (metadata_endpoint = false)" end }
  end
  local base = endpoint:gsub("/+$", "") .. ROLE_PATH
  local http_get = ctx.http_get or cvm_role.http_get
  local role

  local function get(url)
    local ok, status, body = pcall(http_get, url, cvm_role.TIMEOUT)
    if not ok then
      return nil, "metadata service unreachable (" .. tostring(status) .. ")"
    end
    if status == nil then
      return nil, "metadata service unreachable (" .. tostring(body) .. ")"
    end
    if status ~= 200 then
      return nil, "HTTP " .. tostring(status)
    end
    return body
  end

  local provider = { name = "CVM role", dynamic = true }
  function provider.fetch()
    if not role then
      local body, err = get(base)
      if not body then
        if err:find("^HTTP") then
          err = "no CAM role bound to this instance (the metadata service at " .. endpoint .. " answered " .. err
            .. ")"
        end
        return nil, err
      end
      role = body:match("^%s*([%w+=,.@_-]+)%s*$")
      if not role then
        return nil, "the metadata service at " .. endpoint .. " names no CAM role"
      end
    end
    local body, err = get(base .. role)
    local name = role
    if not body then
      role = nil -- the role may have been replaced: ask for its name again next time
      return nil, "cvm role " .. name .. ": no credentials from the metadata service (" .. err .. ")"
    end
    local doc = require("cjson.safe").decode(body)
    if type(doc) ~= "table" or doc.Code ~= "Success" then
      role = nil
      return nil, "cvm role " .. name .. ": the metadata service did not return credentials"
    end
    local c, cerr = record.new("cvm role " .. name, doc.TmpSecretId, doc.TmpSecretKey, doc.Token,
      tonumber(doc.ExpiredTime), "cvm role " .. name .. ": ")
    if not c then
      return nil, cerr
    end
    return c
  end
  return provider
end

return cvm_role

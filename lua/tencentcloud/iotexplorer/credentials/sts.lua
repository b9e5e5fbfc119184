-- The STS calls behind the assumed-role sources (assume_role.lua, oidc.lua), through the library's own signer
-- and transport: a core session for the STS endpoint, one core.call per request.
local errors = require("tencentcloud.iotexplorer.errors")
local record = require("tencentcloud.iotexplorer.credentials.record")

local sts = {}

sts.DEFAULT_ENDPOINT = "https://sts.tencentcloudapi.com"
sts.DEFAULT_REGION = "ap-guangzhou"
sts.VERSION = "2018-08-13"
sts.DEFAULT_DURATION = 7200
sts.MAX_DURATION = 43200
-- As in the Python SDK, an assumed role is treated as expiring at ExpiredTime - 0.9 * DurationSeconds: it is
-- renewed after a tenth of its life, long before a clock or a slow refresh could matter.
sts.EARLY_FRACTION = 0.9

-- scheme, host, port of an http(s)://host[:port] endpoint, or nil.
function sts.parse_endpoint(url)
  if type(url) ~= "string" then
    return nil
  end
  local scheme, host, port = url:match("^(https?)://([%w.-]+):?(%d*)/?$")
  if not scheme then
    return nil
  end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then
    return nil
  end
  return scheme, host, port
end

-- The STS client of one chain: a session made on first use, kept for the chain's life.
function sts.new(ctx)
  local o = ctx.o
  local endpoint = o.sts_endpoint or sts.DEFAULT_ENDPOINT
  local scheme, host, port = sts.parse_endpoint(endpoint)
  local self = { endpoint = endpoint, region = o.sts_region or sts.DEFAULT_REGION, timeout = o.timeout or 10 }
  local session

  -- Performs action with params, signed with creds (or unsigned when creds is nil). Returns a record
  -- (source = `source`) or nil, message; secrets are scrubbed from the message.
  function self.call(action, params, creds, source, region)
    local core = require("tencentcloud.iotexplorer.core")
    local transport = o.sts_transport
    if not transport and not session then
      local serr
      session, serr = core.new_session{
        scheme = scheme, host = host, port = port, region = region or self.region, service = "sts",
        timeout = self.timeout, connect_timeout = o.connect_timeout or 5,
        ca_file = o.ca_file, ca_path = o.ca_path, proxy = o.proxy,
      }
      if not session then
        return nil, action .. " could not start: " .. tostring(serr and serr.message or serr)
      end
    end
    local req = {
      endpoint = endpoint, region = region or self.region, service = "sts", action = action,
      version = sts.VERSION, params = params, timeout = self.timeout, timestamp = os.time(),
    }
    local secrets = { params.WebIdentityToken }
    if creds then
      req.secret_id, req.secret_key, req.token = creds.secret_id, creds.secret_key, creds.token
      secrets[#secrets + 1] = creds.secret_key
      secrets[#secrets + 1] = creds.token
    else
      req.unsigned = true
    end
    -- Inside nginx the client's transport runs the call in a worker thread, and this caller yields.
    local ok, res, err
    if transport then
      ok, res, err = pcall(transport, "call", req)
    else
      ok, res, err = pcall(core.call, session, req)
    end
    if not ok then
      return nil, errors.scrub(action .. " failed: " .. tostring(res), secrets)
    end
    if not res then
      local e = errors.from_core(err)
      return nil, errors.scrub(action .. " at " .. endpoint .. " failed: " .. tostring(e), secrets), e.code
    end
    local c = type(res) == "table" and type(res.Credentials) == "table" and res.Credentials or {}
    local expires = tonumber(res.ExpiredTime)
    if not expires then
      return nil, action .. " at " .. endpoint .. " answered without ExpiredTime"
    end
    local duration = params.DurationSeconds or sts.DEFAULT_DURATION
    local fresh, ferr = record.new(source, c.TmpSecretId, c.TmpSecretKey, c.Token, expires, action .. ": ",
      expires - sts.EARLY_FRACTION * duration)
    if not fresh then
      return nil, ferr
    end
    return fresh
  end

  function self.close()
    if session then
      session:close()
      session = nil
    end
  end
  return self
end

-- A RoleSessionName when none was given: what the role's audit log shows.
function sts.session_name(time)
  return "tciot-" .. string.format("%d", time())
end

return sts

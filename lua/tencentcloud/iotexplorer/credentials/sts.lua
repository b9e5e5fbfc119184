-- The STS calls behind the assumed-role sources (assume_role.lua, oidc.lua), through the library's own signer
-- and transport: a core session for the STS endpoint, one core.call per request.
local errors = require("tencentcloud.iotexplorer.errors")
local record = require("tencentcloud.iotexplorer.credentials.record")

local sts = {}

local facts = require("tencentcloud.iotexplorer.actions").sts
local check = require("tencentcloud.iotexplorer.check")
local defaults = require("tencentcloud.iotexplorer.defaults")

sts.DEFAULT_ENDPOINT = facts.DEFAULT_ENDPOINT
sts.DEFAULT_REGION = facts.DEFAULT_REGION
sts.VERSION = facts.VERSION
sts.DEFAULT_DURATION = facts.DEFAULT_DURATION
sts.MAX_DURATION = facts.MAX_DURATION
-- As in the Python SDK, an assumed role is treated as expiring at ExpiredTime - 0.9 * DurationSeconds: it is
-- renewed after a tenth of its life, long before a clock or a slow refresh could matter.
sts.EARLY_FRACTION = 0.9

-- The STS client of one chain for one region: a session made on first use, kept for the chain's life.
function sts.new(ctx, region)
  local o = ctx.o
  local endpoint = o.sts_endpoint or sts.DEFAULT_ENDPOINT
  local ep = assert(check.endpoint(endpoint, "sts_endpoint"))   -- checked by credentials.new
  local self = { endpoint = endpoint, region = region or o.sts_region or sts.DEFAULT_REGION,
                 timeout = o.timeout or defaults.timeout }
  local session, transport
  local session_opts = {
    scheme = ep.scheme, host = ep.host, port = ep.port, region = self.region, service = facts.SERVICE,
    timeout = self.timeout, connect_timeout = o.connect_timeout or defaults.connect_timeout,
    ca_file = o.ca_file, ca_path = o.ca_path, proxy = o.proxy,
  }
  -- Inside nginx the call runs in the thread pool through a transport of its own (the client's talks to
  -- the API's host), and the caller yields meanwhile.
  if o.nginx ~= false then
    local ngx_support = require("tencentcloud.iotexplorer.ngx")
    if ngx_support.active() then
      -- nginx.location proxies to the API's host, not to STS: these calls keep the thread pool.
      local n_opts = o.nginx
      if type(n_opts) == "table" and n_opts.location then
        n_opts = { thread_pool = n_opts.thread_pool, shared_dict = n_opts.shared_dict }
      end
      local n = ngx_support.setup({ nginx = n_opts, rate_limit = false }, session_opts)
      transport = n and n.transport
    end
  end

  -- Performs action with params, signed with creds (or unsigned when creds is nil). Returns a record
  -- (source = `source`) or nil, message; secrets are scrubbed from the message.
  function self.call(action, params, creds, source)
    local core = require("tencentcloud.iotexplorer.core")
    if not transport and not session then
      local ok, s, serr = pcall(core.new_session, session_opts)
      if not ok or not s then
        serr = ok and serr or s
        return nil, action .. " could not start: " .. tostring(type(serr) == "table" and serr.message or serr)
      end
      session = s
    end
    local req = {
      action = action, version = sts.VERSION, params = params, timeout = self.timeout, timestamp = os.time(),
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

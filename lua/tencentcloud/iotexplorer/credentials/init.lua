-- Where the secret id and key come from: a list of sources (one file each in this folder) and one chain
-- that owns caching, expiry, refresh and invalidation. The default order, first that yields (tccli's
-- precedence: explicit options, then the environment, then files):
--   explicit     secret_id / secret_key / token given to iot.new (then the only source)
--   custom       credential_provider = function() return id, key, token, expiry end
--   environment  TENCENTCLOUD_SECRET_ID / _SECRET_KEY (+ _SESSION_TOKEN or tccli's TENCENTCLOUD_TOKEN)
--   profile file TENCENTCLOUD_CREDENTIALS_FILE, else ~/.tencentcloud/credentials, else /etc/tencentcloud/...
--   tccli        ~/.tccli/<profile>.credential
--   CVM role     the instance's CAM role from the metadata service
--   OIDC (TKE)   AssumeRoleWithWebIdentity from TKE_* variables
-- An explicit `profile` option puts the two files before the environment. role_arn (or TENCENTCLOUD_ROLE_ARN)
-- assumes that role with whatever the chain yields; oidc_* options or use_cvm_role make one source the only one.
-- Files and variables are read once, when the chain is built, so a typo shows up in iot.new; the dynamic
-- sources are asked on first use. Temporary keys are never used within 300 s of their expiry.
-- No message, record or tostring here ever holds a secret.

local check = require("tencentcloud.iotexplorer.check")
local record = require("tencentcloud.iotexplorer.credentials.record")
local profile = require("tencentcloud.iotexplorer.credentials.profile")
local tccli = require("tencentcloud.iotexplorer.credentials.tccli")
local cvm_role = require("tencentcloud.iotexplorer.credentials.cvm_role")
local sts = require("tencentcloud.iotexplorer.credentials.sts")
local oidc = require("tencentcloud.iotexplorer.credentials.oidc")
local assume_role = require("tencentcloud.iotexplorer.credentials.assume_role")

local credentials = {}

-- The iot.new options this module owns (and checks).
credentials.OPTIONS = {
  "secret_id", "secret_key", "token", "profile", "credential_provider", "metadata_endpoint", "use_cvm_role",
  "role_arn", "role_session_name", "role_duration", "role_external_id", "role_policy", "sts_endpoint",
  "sts_region", "oidc_provider_id", "oidc_token_file",
}

local environment = require("tencentcloud.iotexplorer.credentials.environment")

-- The default chain after the explicit and custom sources: a new source is one file and one line here.
-- A source with NAMED_PROFILE = true reads the profile a `profile` option names: such sources then move
-- ahead of the environment.
local SOURCES = {
  environment,
  profile,
  tccli,
  cvm_role,
  oidc,
}

-- SOURCES in the order the options ask for.
local function ordered_sources(o)
  if not o.profile then
    return SOURCES
  end
  local first, rest = {}, {}
  for _, source in ipairs(SOURCES) do
    local list = source.NAMED_PROFILE and first or rest
    list[#list + 1] = source
  end
  for _, source in ipairs(rest) do
    first[#first + 1] = source
  end
  return first
end

credentials.REFRESH_BEFORE = record.REFRESH_BEFORE
credentials.METADATA_TIMEOUT = cvm_role.TIMEOUT
credentials.DEFAULT_METADATA_ENDPOINT = cvm_role.DEFAULT_ENDPOINT
credentials.SYSTEM_FILE = profile.SYSTEM_FILE
credentials.parse_ini = profile.parse_ini
credentials.http_get = cvm_role.http_get
credentials.tccli_configure = tccli.configure

-- How long a caller waits for another's refresh (nginx light threads) before fetching itself.
local WAIT_LIMIT = 30
-- After a failed refresh, while the old keys are still good, seconds before the source is asked again.
local RETRY_PAUSE = 10

-- ----------------------------------------------------------------------------
-- The chain.

local Chain = {}
Chain.__index = Chain

function Chain.__tostring(self)
  local c = self.cached
  return "credential chain (" .. (c and ("credentials from " .. c.source) or "nothing fetched yet") .. ")"
end

local function new_chain(providers, time)
  return setmetatable({ providers = providers, time = time, generation = 0, retry_at = 0 }, Chain)
end

-- Another caller is refreshing (it yielded: an nginx light thread waiting for STS). Where nginx can
-- sleep, wait for it; elsewhere nothing can be running concurrently but a provider that yields itself, and
-- the caller fetches on its own.
local function wait_refresh(self)
  local n = rawget(_G, "ngx")
  if type(n) ~= "table" or type(n.sleep) ~= "function" then
    return false
  end
  local waited = 0
  while self.busy and waited < WAIT_LIMIT do
    if not pcall(n.sleep, 0.005) then
      return false
    end
    waited = waited + 0.005
  end
  return not self.busy
end

-- Asks one provider; a raising provider is a failure of that source, never of the caller.
local function ask(p, now)
  local ok, c, why, fatal = pcall(p.fetch, p)
  if not ok then
    return nil, p.name .. " failed: " .. tostring(c), true
  end
  if c and c.expiration and now >= c.expiration then
    return nil, c.source .. " gave keys that have expired already (is this machine's clock right?)"
  end
  return c, why, fatal
end

-- Walks the sources in order; the first that yields becomes the chain's source from then on.
function Chain:_walk(now)
  local tried = {}
  for _, p in ipairs(self.providers) do
    local c, why, fatal = ask(p, now)
    if c then
      self.current = p
      return c
    end
    if fatal then
      return nil, record.error(tostring(why))
    end
    tried[#tried + 1] = "  " .. p.name .. ": " .. tostring(why)
  end
  return nil, record.error("no credentials found; tried, in order:\n" .. table.concat(tried, "\n"))
end

-- Fresh keys: from the source that yielded before (a refresh), else the first that yields.
function Chain:_fetch(old, now)
  local p = self.current
  if not p then
    return self:_walk(now)
  end
  local c, why = ask(p, now)
  if c then
    return c
  end
  -- The old keys may still be used while they are more than 300 s from expiry; the source is asked again
  -- after a pause, not by every call.
  if old and old.usable_until and now < old.usable_until then
    self.retry_at = now + RETRY_PAUSE
    return old
  end
  return nil, record.error("credentials from " .. (old and old.source or p.name) .. " could not be refreshed: "
    .. tostring(why))
end

-- Returns { secret_id, secret_key, token?, expiration?, source } or nil, err.
function Chain:get()
  local now = self.time()
  local c = self.cached
  if c and (c.refresh_at == nil or now < c.refresh_at or (now < self.retry_at and now < c.usable_until)) then
    return c
  end
  if self.busy then
    -- A refresh is on its way: keys that are still usable do meanwhile, else wait for the new ones.
    if c and c.usable_until and now < c.usable_until then
      return c
    end
    -- The waiters share the outcome of the refresh they waited for, keys or error.
    local generation = self.generation
    if wait_refresh(self) and self.generation ~= generation then
      return self.cached, self.last_err
    end
  end
  self.busy = true
  local ok, fresh, err = pcall(self._fetch, self, c, now)
  if not ok then
    fresh, err = nil, record.error("credential chain failed: " .. tostring(fresh))
  end
  -- Keys fetched already inside the 300 s window still serve this call, and are asked for again next time.
  self.cached, self.last_err = fresh, err
  self.generation = self.generation + 1
  self.busy = false
  return fresh, err
end

-- Forgets keys the server rejected. True when the source can give others (temporary keys, a provider).
function Chain:invalidate()
  local p = self.current
  if not p or not p.dynamic then
    return false
  end
  self.cached = nil
  return true
end

-- Where the keys come from, for logs: never a secret.
function Chain:source()
  if self.cached then
    return self.cached.source
  end
  local p = self.current or self.providers[1]
  return p and p.name
end

-- ----------------------------------------------------------------------------
-- Building it.

local function cred_error(message)
  return nil, record.error(message)
end

-- The options' types and ranges (InvalidParameter, naming the option). Keys are checked as CredentialError
-- by the sources that read them.
local function check_options(o)
  local err = check.opt_string(o, "profile") or check.func(o, "credential_provider")
    or check.opt_string(o, "role_arn") or check.opt_string(o, "role_external_id")
    or check.opt_string(o, "role_policy") or check.opt_string(o, "oidc_provider_id")
    or check.opt_string(o, "oidc_token_file") or check.opt_string(o, "sts_region")
    or check.integer(o, "role_duration", 1, sts.MAX_DURATION)
  if err then
    return err
  end
  local msg = cvm_role.check(o)
  if msg then
    return check.invalid("metadata_endpoint", msg)
  end
  if o.use_cvm_role ~= nil and type(o.use_cvm_role) ~= "boolean" then
    return check.invalid("use_cvm_role", "use_cvm_role must be true or false")
  end
  local name = o.role_session_name
  if name ~= nil and (type(name) ~= "string" or #name < 2 or #name > 128 or not name:find("^[%w+=,.@_-]+$")) then
    return check.invalid("role_session_name", "role_session_name must be 2 to 128 characters of letters,"
      .. " digits and +=,.@_-")
  end
  if o.sts_endpoint ~= nil then
    local _, eerr = check.endpoint(o.sts_endpoint, "sts_endpoint")
    if eerr then
      return eerr
    end
  end
  if o.sts_region ~= nil and not o.sts_region:find("^[a-z0-9-]+$") then
    return check.invalid("sts_region", "sts_region must look like \"ap-guangzhou\"")
  end
  if o.credential_provider ~= nil and (o.secret_id ~= nil or o.secret_key ~= nil) then
    return check.invalid("credential_provider", "give either secret_id/secret_key or credential_provider")
  end
  if o.use_cvm_role and (o.secret_id ~= nil or o.credential_provider ~= nil or oidc.explicit(o)) then
    return check.invalid("use_cvm_role", "use_cvm_role uses only the CVM role: give no keys, provider or oidc_*")
  end
  if oidc.explicit(o) then
    for _, f in ipairs({ "oidc_provider_id", "oidc_token_file", "role_arn" }) do
      if o[f] == nil then
        return check.invalid(f, "OIDC needs oidc_provider_id, oidc_token_file and role_arn; " .. f .. " is missing")
      end
    end
    if o.secret_id ~= nil or o.credential_provider ~= nil then
      return check.invalid("oidc_provider_id", "give either keys or oidc_*, not both")
    end
  end
end

-- Builds a chain of `providers`. One with no dynamic source is tried at once: its error belongs to iot.new.
local function finish(providers, time)
  local chain = new_chain(providers, time)
  for _, p in ipairs(providers) do
    if p.dynamic then
      return chain
    end
  end
  local c, err = chain:get()
  if not c then
    return nil, err
  end
  return chain
end

-- The named profile, when one was named (option or variable) but no file has it: an error to fix now.
local function check_named_profile(ctx, file_sources, env_yields)
  local o, getenv = ctx.o, ctx.getenv
  local named = o.profile or record.env(getenv, "TENCENTCLOUD_PROFILE") or record.env(getenv, "TCCLI_PROFILE")
  if not named or (env_yields and o.profile == nil) then
    return nil
  end
  local why = {}
  for _, p in ipairs(file_sources) do
    if p.found then
      return nil
    end
    local _, reason, fatal = p.fetch()
    if fatal then
      return reason
    end
    why[#why + 1] = "  " .. p.name .. ": " .. tostring(reason)
  end
  return "profile [" .. named .. "] not found:\n" .. table.concat(why, "\n")
end

-- o: the options in credentials.OPTIONS; from the client timeout, connect_timeout, ca_file, ca_path, proxy,
-- nginx and, inside nginx, http_get (url, timeout -> status, body); for tests getenv, home, files (profile
-- file paths), time.
-- Returns a chain or nil, err.
function credentials.new(o)
  o = o or {}
  local err = check_options(o)
  if err then
    return nil, err
  end
  local getenv = o.getenv or os.getenv
  local ctx = { o = o, getenv = getenv, time = o.time or os.time, http_get = o.http_get }
  ctx.home = o.home or record.env(getenv, "HOME")
  ctx.sdk_profile = o.profile or record.env(getenv, "TENCENTCLOUD_PROFILE") or "default"
  -- One provider per source and chain: tccli's "cvm-role" file and the CVM role source share theirs.
  local made, sts_clients = {}, {}
  function ctx.provider(source)
    made[source] = made[source] or source.new(ctx)
    return made[source]
  end
  function ctx.sts(region)
    region = region or o.sts_region or sts.DEFAULT_REGION
    sts_clients[region] = sts_clients[region] or sts.new(ctx, region)
    return sts_clients[region]
  end

  if oidc.explicit(o) then
    return new_chain({ oidc.new(ctx) }, ctx.time)
  end

  local providers = {}
  local explicit, xerr = require("tencentcloud.iotexplorer.credentials.static").new(ctx)
  if xerr then
    return cred_error(xerr)
  end
  if explicit then
    providers[1] = explicit
  elseif o.use_cvm_role then
    providers[1] = ctx.provider(cvm_role)
  else
    local custom = require("tencentcloud.iotexplorer.credentials.custom").new(ctx)
    providers[1] = custom
    local files, env_yields = {}, false
    for _, source in ipairs(ordered_sources(o)) do
      local p = ctx.provider(source)
      providers[#providers + 1] = p
      if source.NAMED_PROFILE then
        files[#files + 1] = p
      elseif source == environment then
        env_yields = p.fetch() ~= nil
      end
    end
    local missing = not custom and check_named_profile(ctx, files, env_yields)
    if missing then
      return cred_error(missing)
    end
  end

  local chain, cerr = finish(providers, ctx.time)
  if not chain then
    return nil, cerr
  end
  if assume_role.arn(ctx) then
    return new_chain({ assume_role.new(ctx, chain) }, ctx.time)
  end
  return chain
end

return credentials

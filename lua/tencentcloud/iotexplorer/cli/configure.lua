-- tciot configure list: the profile tciot resolves and each value it would use, with where it came from.
-- Secrets are masked to their last 4 characters; nothing here talks to the network (the CVM role, OIDC and
-- an assumed role are fetched when a command needs them, and the listing says so).
local actions = require("tencentcloud.iotexplorer.actions")
local credentials = require("tencentcloud.iotexplorer.credentials")
local defaults = require("tencentcloud.iotexplorer.defaults")

local configure = {}

local NOT_SET = "<not set>"

-- "****abcd": enough to tell two keys apart, never enough to use one.
function configure.mask(s)
  if type(s) ~= "string" or s == "" then
    return NOT_SET
  end
  if #s <= 8 then
    return "****"
  end
  return "****" .. s:sub(-4)
end

local function getter(env)
  return (env and env.getenv) or os.getenv
end

local function from_env(getenv, name)
  local v = getenv(name)
  if v ~= nil and v ~= "" then
    return v, "environment " .. name
  end
end

-- The first of the given (value, source) pairs whose value is set.
local function first(...)
  local n = select("#", ...)
  for i = 1, n, 2 do
    local v, source = select(i, ...)
    if v ~= nil then
      return v, source
    end
  end
  return nil, nil
end

-- options: tciot's global options (profile, region, endpoint, output, language, role_arn or role-arn,
-- use_cvm_role or use-cvm-role). out(line) writes one line (a file such as io.stdout is taken too). env
-- (optional, for tests): getenv, home. Returns the exit code: 0, or 2 when no credentials are configured (or
-- a file is broken).
function configure.list(options, out, env)
  options = options or {}
  if type(out) ~= "function" then
    -- A file (io.stdout) is taken too.
    local file = out
    out = function(line) file:write(line, "\n") end
  end
  -- tciot's option names are spelt with dashes (--role-arn), the library's with underscores.
  local function opt(name)
    local v = options[name]
    if v == nil then v = options[name:gsub("_", "-")] end
    return v
  end
  local getenv = getter(env)
  local rows = {}
  local function row(name, value, source)
    rows[#rows + 1] = { name, value or NOT_SET, source or "" }
  end

  local sdk_profile, sdk_source = from_env(getenv, "TENCENTCLOUD_PROFILE")
  local tccli_profile, tccli_profile_source = from_env(getenv, "TCCLI_PROFILE")
  local profile, profile_source = first(options.profile, "--profile", sdk_profile, sdk_source,
    tccli_profile, tccli_profile_source)
  row("profile", profile or "default", profile_source or "default")

  local conf, cerr = credentials.tccli_configure(options.profile, { getenv = getenv, home = env and env.home })
  local code = 0
  if not conf then
    out("tciot: " .. cerr)
    conf, code = {}, 2
  end
  local tccli_source = conf.file and ("tccli " .. conf.file)

  -- Keys: only the sources that need no network are asked here.
  local chain, err = credentials.new{
    profile = options.profile, getenv = getenv, home = env and env.home, metadata_endpoint = false,
  }
  local keys = chain and chain:get()
  local role_arn, role_source = first(opt("role_arn"), "--role-arn", from_env(getenv, "TENCENTCLOUD_ROLE_ARN"))
  if opt("use_cvm_role") then
    row("secret_id", nil, "the CVM role, fetched when a command runs (--use-cvm-role)")
  elseif keys then
    row("secret_id", configure.mask(keys.secret_id), keys.source)
    row("secret_key", configure.mask(keys.secret_key), keys.source)
    row("token", keys.token and configure.mask(keys.token) or nil, keys.token and keys.source or nil)
  else
    row("secret_id", nil, "the CVM role or OIDC (TKE) is tried when a command runs")
  end
  if role_arn then
    row("role_arn", role_arn, role_source .. " (assumed when a command runs)")
  end

  local env_region, env_region_source = from_env(getenv, defaults.region_variable)
  local region, region_source = first(options.region, "--region", env_region, env_region_source,
    conf.region, tccli_source)
  row("region", region, region_source)
  local output, output_source = first(options.output, "--output", conf.output, tccli_source)
  row("output", output or "json", output_source or "default")
  local env_endpoint, env_endpoint_source = from_env(getenv, defaults.endpoint_variable)
  local endpoint, endpoint_source = first(options.endpoint, "--endpoint", env_endpoint, env_endpoint_source,
    conf.endpoint, tccli_source)
  row("endpoint", endpoint or actions.DEFAULT_ENDPOINT, endpoint_source or "default")
  local language, language_source = first(options.language, "--language", conf.language, tccli_source)
  row("language", language, language_source)

  local width = { 0, 0 }
  for _, r in ipairs(rows) do
    for i = 1, 2 do
      if #r[i] > width[i] then width[i] = #r[i] end
    end
  end
  for _, r in ipairs(rows) do
    out((string.format("%-" .. width[1] .. "s  %-" .. width[2] .. "s  %s", r[1], r[2], r[3]):gsub("%s+$", "")))
  end

  if not keys and not opt("use_cvm_role") then
    -- Why no source yielded, one line each (the chain's own explanation).
    out("")
    for line in tostring(err and err.message or "no credentials found"):gmatch("[^\n]+") do
      out(line)
    end
    return 2
  end
  return code
end

return configure

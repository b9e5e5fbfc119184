-- Where the secret id and key come from. The chain, first that yields:
--   1. explicit  secret_id / secret_key / token given to iot.new
--   2. custom    credential_provider = function() return id, key, token, expiry end
--   3. env       TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (+ TENCENTCLOUD_SESSION_TOKEN)
--   4. profile   TENCENTCLOUD_CREDENTIALS_FILE, else ~/.tencentcloud/credentials,
--                else /etc/tencentcloud/credentials; section from `profile`, else
--                TENCENTCLOUD_PROFILE, else "default"; keys secret_id, secret_key, token
--   5. cvm_role  the instance's CAM role from the metadata service
-- Explicit, env and profile are resolved once, in credentials.new, so a typo shows
-- up when the client is created. The custom provider and the CVM role are asked on
-- first use; what they return is cached until 300 s before it expires.
-- Nothing here ever puts a secret into an error message.

local errors = require("tencentcloud.iotexplorer.errors")

local credentials = {}

credentials.REFRESH_BEFORE = 300
credentials.METADATA_TIMEOUT = 1
credentials.DEFAULT_METADATA_ENDPOINT = "http://metadata.tencentyun.com"
credentials.SYSTEM_FILE = "/etc/tencentcloud/credentials"
local ROLE_PATH = "/latest/meta-data/cam/security-credentials/"

local function cred_error(message)
  return errors.new(errors.CREDENTIAL_ERROR, message, { sent = false })
end

-- Refuses what would only fail later as AuthFailure.SignatureFailure. `label` names
-- the value (never the value itself).
local function check_value(label, value, optional)
  if value == nil and optional then
    return true
  end
  if type(value) ~= "string" then
    return nil, label .. " must be a string"
  end
  if value == "" then
    if optional then
      return true
    end
    return nil, label .. " is empty"
  end
  if value:find("^%s") or value:find("%s$") then
    return nil, label .. " has leading or trailing whitespace; remove it"
      .. " (a key pasted with stray spaces fails with AuthFailure.SignatureFailure)"
  end
  if value:find("%c") then
    return nil, label .. " contains a control character"
  end
  -- Keys and tokens are printable ASCII; anything else only fails later, as AuthFailure.
  if value:find("[^\33-\126]") then
    return nil, label .. " contains a byte that is not printable ASCII"
  end
  return true
end

-- id, key and token as one record; nil-or-empty token means none.
local function make(source, id, key, token, expiration, where)
  local ok, msg = check_value(where .. "secret_id", id)
  if ok then ok, msg = check_value(where .. "secret_key", key) end
  if ok then ok, msg = check_value(where .. "token", token, true) end
  if not ok then
    return nil, cred_error(msg)
  end
  if expiration ~= nil and type(expiration) ~= "number" then
    return nil, cred_error(where .. "expiry must be a number (Unix seconds)")
  end
  if token == "" then
    token = nil
  end
  return { secret_id = id, secret_key = key, token = token, expiration = expiration, source = source }
end

-- Minimal INI: [section], key = value, comments starting with # or ;. Values are
-- trimmed (as Python's configparser does, which the official SDK uses), and so
-- are CRs from files edited on Windows.
function credentials.parse_ini(text)
  local sections, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local trimmed = line:match("^%s*(.-)%s*$")
    -- Blank lines and comments are skipped.
    if trimmed ~= "" and not trimmed:find("^[#;]") then
      local name = trimmed:match("^%[%s*(.-)%s*%]$")
      if name then
        current = sections[name] or {}
        sections[name] = current
      elseif current then
        local k, v = trimmed:match("^([^=]-)%s*=%s*(.*)$")
        if k then
          current[k] = v
        end
      end
    end
  end
  return sections
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

local function from_explicit(o)
  if o.secret_id == nil and o.secret_key == nil and o.token == nil then
    return nil
  end
  if o.secret_id == nil or o.secret_key == nil then
    return nil, cred_error("give both secret_id and secret_key (or neither, to use the credential chain)")
  end
  return make("explicit", o.secret_id, o.secret_key, o.token, nil, "")
end

local function from_env(getenv)
  local id, key = getenv("TENCENTCLOUD_SECRET_ID"), getenv("TENCENTCLOUD_SECRET_KEY")
  if (id == nil or id == "") and (key == nil or key == "") then
    return nil
  end
  if id == nil or id == "" or key == nil or key == "" then
    return nil, cred_error("set both TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or neither")
  end
  return make("env", id, key, getenv("TENCENTCLOUD_SESSION_TOKEN"), nil, "TENCENTCLOUD_")
end

local function from_profile(o, getenv)
  local section = o.profile or getenv("TENCENTCLOUD_PROFILE")
  local explicit_section = section ~= nil and section ~= ""
  if not explicit_section then
    section = "default"
  end

  local files
  local override = getenv("TENCENTCLOUD_CREDENTIALS_FILE")
  if o.files then
    files = o.files
  elseif override and override ~= "" then
    files = { override }
  else
    files = {}
    local home = o.home or getenv("HOME")
    if home and home ~= "" then
      files[#files + 1] = home .. "/.tencentcloud/credentials"
    end
    files[#files + 1] = credentials.SYSTEM_FILE
  end

  for _, path in ipairs(files) do
    local text = read_file(path)
    if text then
      local values = credentials.parse_ini(text)[section]
      if values then
        local where = "profile [" .. section .. "] in " .. path .. ": "
        if not values.secret_id or not values.secret_key then
          return nil, cred_error(where .. "needs both secret_id and secret_key")
        end
        local c, err = make("profile", values.secret_id, values.secret_key, values.token, nil, where)
        if c then
          c.source = "profile:" .. path
        end
        return c, err
      end
    elseif override and override ~= "" and not o.files then
      return nil, cred_error("TENCENTCLOUD_CREDENTIALS_FILE names " .. path .. ", which cannot be read")
    end
  end
  if explicit_section then
    return nil, cred_error("profile [" .. section .. "] not found in " .. table.concat(files, " or "))
  end
  return nil
end

-- A bare HTTP/1.0 GET with one overall timeout, enough for the metadata service
-- (plain http on a link-local address). LuaSocket's http module resets the socket
-- timeout to its own 60 s default, hence this. Returns status, body or nil, err.
-- Replaceable (credentials.http_get = fn), e.g. by a cosocket version in nginx.
function credentials.http_get(url, timeout)
  local socket = require("socket")
  local host, port, path = url:match("^http://([^/:]+):?(%d*)(/.*)$")
  if not host then
    return nil, "only http:// URLs are supported for the metadata service: " .. url
  end
  port = tonumber(port) or 80
  local started = socket.gettime()
  local sock = socket.tcp()
  sock:settimeout(timeout)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  sock:settimeout(math.max(timeout - (socket.gettime() - started), 0.001), "t")
  ok, err = sock:send("GET " .. path .. " HTTP/1.0\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n")
  if not ok then
    sock:close()
    return nil, err
  end
  local data, rerr, partial = sock:receive("*a")
  sock:close()
  if not data then
    if rerr ~= "closed" then
      return nil, rerr
    end
    data = partial
  end
  local status, body = data:match("^HTTP/%d%.%d (%d%d%d)[^\n]*\n.-\r?\n\r?\n(.*)$")
  if not status then
    return nil, "malformed HTTP response"
  end
  return tonumber(status), body
end

-- The CAM role bound to a CVM instance: role name first, then its temporary keys.
local function cvm_role_fetcher(endpoint, http_get)
  local role
  return function()
    local base = endpoint:gsub("/+$", "") .. ROLE_PATH
    if not role then
      local status, body = http_get(base, credentials.METADATA_TIMEOUT)
      if status ~= 200 then
        return nil, "no CAM role from the metadata service at " .. endpoint
          .. " (" .. (status and ("HTTP " .. status) or tostring(body)) .. ")"
      end
      role = body:match("^%s*([^%s]+)")
      if not role then
        return nil, "the metadata service at " .. endpoint .. " names no CAM role"
      end
    end
    local status, body = http_get(base .. role, credentials.METADATA_TIMEOUT)
    if status ~= 200 then
      role = nil -- the role may have been replaced; ask again next time
      return nil, "the metadata service at " .. endpoint .. " gave no credentials for the role ("
        .. (status and ("HTTP " .. status) or tostring(body)) .. ")"
    end
    local cjson = require("cjson.safe")
    local doc = cjson.decode(body)
    if type(doc) ~= "table" or doc.Code ~= "Success" then
      return nil, "the metadata service at " .. endpoint .. " did not return credentials for role " .. role
    end
    local expiry = tonumber(doc.ExpiredTime)
    return doc.TmpSecretId, doc.TmpSecretKey, doc.Token, expiry
  end
end

local Chain = {}
Chain.__index = Chain

-- A source asked at call time (custom provider, CVM role), with its cache.
local function dynamic_source(name, fetch)
  return { name = name, fetch = fetch }
end

function Chain:_from_dynamic(src)
  local time = self.time
  local c = src.cached
  if c and (c.expiration == nil or time() < c.expiration - credentials.REFRESH_BEFORE) then
    return c
  end
  local ok, id, key, token, expiry = pcall(src.fetch)
  local fresh, err
  if not ok then
    err = cred_error(src.name .. " failed: " .. tostring(id))
  elseif id == nil then
    if key ~= nil then
      err = cred_error(src.name .. " failed: " .. tostring(key))
    end
  else
    fresh, err = make(src.name, id, key, token, expiry, src.name .. ": ")
  end
  if fresh then
    src.cached = fresh
    return fresh
  end
  -- Inside the refresh window the old keys still work: keep using them.
  if c and c.expiration and time() < c.expiration then
    return c
  end
  src.cached = nil
  return nil, err
end

-- Returns { secret_id, secret_key, token?, expiration?, source } or nil, err.
function Chain:get()
  if self.custom then
    local c, err = self:_from_dynamic(self.custom)
    if c or err then
      return c, err
    end
  end
  if self.static then
    return self.static
  end
  if self.cvm then
    local c, err = self:_from_dynamic(self.cvm)
    if c or err then
      return c, err
    end
  end
  return nil, cred_error("no credentials: give secret_id and secret_key, set TENCENTCLOUD_SECRET_ID and"
    .. " TENCENTCLOUD_SECRET_KEY, write a profile file, or run on a CVM instance with a CAM role")
end

-- Forgets cached temporary keys (after the server rejected them).
function Chain:invalidate()
  if self.custom then self.custom.cached = nil end
  if self.cvm then self.cvm.cached = nil end
end

-- The name of the source that will be used, for logs: never a secret.
function Chain:source()
  if self.custom then return "custom" end
  if self.static then return self.static.source end
  return "cvm_role"
end

-- o: secret_id, secret_key, token, profile, credential_provider, metadata_endpoint
-- (false: no CVM role), and for tests getenv, home, files (profile paths), time,
-- http_get. Returns a chain or nil, err.
function credentials.new(o)
  o = o or {}
  local getenv = o.getenv or os.getenv
  local chain = setmetatable({ time = o.time or os.time }, Chain)

  if o.credential_provider ~= nil then
    if type(o.credential_provider) ~= "function" then
      return nil, errors.invalid("credential_provider", "credential_provider must be a function")
    end
    if o.secret_id ~= nil or o.secret_key ~= nil then
      return nil, errors.invalid("credential_provider", "give either secret_id/secret_key or credential_provider")
    end
    chain.custom = dynamic_source("credential_provider", o.credential_provider)
  end
  local perr = require("tencentcloud.iotexplorer.check").opt_string(o, "profile")
  if perr then
    return nil, perr
  end

  local c, err = from_explicit(o)
  if not c and not err then
    c, err = from_env(getenv)
  end
  if not c and not err then
    c, err = from_profile(o, getenv)
  end
  if err then
    return nil, err
  end
  chain.static = c

  local endpoint = o.metadata_endpoint
  if endpoint == nil then
    endpoint = credentials.DEFAULT_METADATA_ENDPOINT
  end
  if endpoint and (type(endpoint) ~= "string" or not endpoint:find("^http://[^/%c]+/*$")) then
    return nil, errors.invalid("metadata_endpoint", "metadata_endpoint must be an http:// URL or false")
  end
  if not c and endpoint then
    local http_get = o.http_get or function(url, timeout) return credentials.http_get(url, timeout) end
    chain.cvm = dynamic_source("cvm_role", cvm_role_fetcher(endpoint, http_get))
  end

  if not chain.static and not chain.cvm and not chain.custom then
    return nil, cred_error("no credentials: give secret_id and secret_key, set TENCENTCLOUD_SECRET_ID and"
      .. " TENCENTCLOUD_SECRET_KEY, or write a profile file")
  end
  return chain
end

-- The iot.new options this module owns and checks.
credentials.OPTIONS = { "secret_id", "secret_key", "token", "profile", "credential_provider", "metadata_endpoint" }

return credentials

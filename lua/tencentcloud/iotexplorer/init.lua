-- tencentcloud.iotexplorer: the public face of the library.
--
--   local iot = require("tencentcloud.iotexplorer")
--   local client, err = iot.new{ region = "ap-guangzhou" }
--   local res, err = client:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
--
-- The C core signs and performs one request; this file decides everything else:
-- input checks, credentials, the rate limiter, retries, clock-skew repair and
-- logging. No function here raises on bad input: failures are returned as
-- nil, err with err an error object (see errors.lua).

local core = require("tencentcloud.iotexplorer.core")
local errors = require("tencentcloud.iotexplorer.errors")
local retry = require("tencentcloud.iotexplorer.retry")
local credentials = require("tencentcloud.iotexplorer.credentials")
local limiter = require("tencentcloud.iotexplorer.limiter")
local many = require("tencentcloud.iotexplorer.many")

local iot = {
  _VERSION = "0.1.0",
  errors = errors,
}

iot.is_error = errors.is_error

local DEFAULT_ENDPOINT = "https://iotexplorer.tencentcloudapi.com"
local API_VERSION = "2019-04-23"
local PAGE_SIZE = 20

-- The batch-production actions exist only in these regions (see NOTES.md).
local BATCH_REGIONS = {
  ["ap-bangkok"] = true, ["ap-guangzhou"] = true, ["ap-shanghai"] = true,
  ["ap-shanghai-fsi"] = true, ["eu-frankfurt"] = true, ["na-ashburn"] = true,
}
local LANGUAGES = { ["zh-CN"] = true, ["en-US"] = true }

-- ----------------------------------------------------------------------------
-- Input checks. Each returns nil, err (an error object naming the field).

local invalid = errors.invalid

local function is_integer(v)
  return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- On Lua 5.4, 3.0 and 3 encode differently; the API wants integers.
local to_integer = math.tointeger or function(v) return v end

local function check_positive(t, name, max)
  local v = t[name]
  max = max or math.huge
  if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0 or v > max or v == math.huge) then
    return invalid(name, name .. " must be a positive number of seconds"
      .. (max < math.huge and (" up to " .. max) or ""))
  end
end

-- The core takes request timeouts of up to a day.
local MAX_TIMEOUT = 86400

-- True when s is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
-- Plain Lua, so LuaJIT (no utf8 library) runs it too; ASCII-only strings take the fast path.
local function valid_utf8(s)
  if not s:find("[\128-\255]") then return true end
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    if c < 0x80 then
      i = i + 1
    else
      local len, lo, hi
      lo, hi = 0x80, 0xBF
      if c >= 0xC2 and c <= 0xDF then len = 2
      elseif c == 0xE0 then len, lo = 3, 0xA0
      elseif c == 0xED then len, hi = 3, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then len = 3
      elseif c == 0xF0 then len, lo = 4, 0x90
      elseif c >= 0xF1 and c <= 0xF3 then len = 4
      elseif c == 0xF4 then len, hi = 4, 0x8F
      else return false end
      local c2 = s:byte(i + 1)
      if not c2 or c2 < lo or c2 > hi then return false end
      for j = i + 2, i + len - 1 do
        local cj = s:byte(j)
        if not cj or cj < 0x80 or cj > 0xBF then return false end
      end
      i = i + len
    end
  end
  return true
end

local function check_string(t, name, required, label)
  local v = t[name]
  label = label or name
  if v == nil then
    if required then
      return invalid(name, label .. " is required")
    end
    return nil
  end
  if type(v) ~= "string" then
    return invalid(name, label .. " must be a string")
  end
  if v == "" then
    return invalid(name, label .. " must not be empty")
  end
  if v:find("%c") then
    return invalid(name, label .. " must not contain control characters")
  end
end

local function check_int(t, name, required, min, max)
  local v = t[name]
  if v == nil then
    if required then
      return invalid(name, name .. " is required")
    end
    return nil
  end
  if not is_integer(v) or (min and v < min) or (max and v > max) then
    local range = ""
    if min and max then
      range = string.format(" from %d to %d", min, max)
    elseif min then
      range = string.format(" >= %d", min)
    end
    return invalid(name, name .. " must be an integer" .. range)
  end
  t[name] = to_integer(v)
end

-- A parameter that goes into the JSON body: a string as check_string wants it, and valid UTF-8 (JSON text is
-- UTF-8; the service would answer with an error that does not name the field).
local function check_param(t, name, required)
  local err = check_string(t, name, required)
  if err then
    return err
  end
  if t[name] ~= nil and not valid_utf8(t[name]) then
    return invalid(name, name .. " must be valid UTF-8")
  end
end

-- Refuses option names we do not know: a typo (secretId) would otherwise be
-- silently ignored and show up later as a confusing credential error.
local function check_known(t, known, what)
  for k in pairs(t) do
    if not known[k] then
      return invalid(tostring(k), "unknown " .. what .. " '" .. tostring(k) .. "'")
    end
  end
end

-- Raw (next, not pairs): a caller's __pairs or __index never runs inside the client.
local function shallow_copy(t)
  local c = {}
  for k, v in next, t do
    c[k] = v
  end
  return c
end

-- "scheme://host[:port]" (an optional "/" after it) -> scheme, host, port (nil when absent); nil when it is
-- not such a URL. The core takes the parts and builds the URL and Host header once per client.
local function split_endpoint(endpoint)
  local scheme, authority = endpoint:match("^(%a+)://([^/]*)/?$")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil
  end
  local host, port = authority:match("^(%[[%x:.]+%])$"), nil
  if not host then host, port = authority:match("^(%[[%x:.]+%]):(%d+)$") end
  if not host then host, port = authority:match("^([^:]+):(%d+)$") end
  if not host then host = authority:match("^([^:]+)$") end
  if not host or host:find("[%s%c@?#\\\128-\255]") then
    return nil
  end
  port = tonumber(port)
  if port and (port < 1 or port > 65535) then
    return nil
  end
  return scheme, host, port
end

local NEW_OPTIONS = {
  secret_id = true, secret_key = true, token = true, profile = true, credential_provider = true,
  region = true, endpoint = true, timeout = true, connect_timeout = true, max_attempts = true,
  backoff_base = true, backoff_cap = true, rate_limit = true, rate_limit_store = true,
  rate_limit_key = true, language = true, proxy = true, ca_file = true, ca_path = true,
  logger = true, metadata_endpoint = true, sleep = true, max_response_bytes = true,
  nginx = true,
}
for _, name in ipairs(credentials.OPTIONS) do NEW_OPTIONS[name] = true end

local CALL_OPTIONS = { timeout = true, deadline = true }

local function check_new_options(o)
  local err = check_known(o, NEW_OPTIONS, "option")
    or check_positive(o, "timeout", MAX_TIMEOUT) or check_positive(o, "connect_timeout", MAX_TIMEOUT)
    or check_positive(o, "backoff_base") or check_positive(o, "backoff_cap")
    or check_int(o, "max_attempts", false, 1, 100)
    or check_int(o, "max_response_bytes", false, 1)
    or check_string(o, "endpoint") or check_string(o, "proxy")
    or check_string(o, "ca_file") or check_string(o, "ca_path")
    or check_string(o, "rate_limit_key")
  if err then
    return err
  end
  if o.endpoint and not split_endpoint(o.endpoint) then
    return invalid("endpoint", "endpoint must be an http:// or https:// URL: scheme://host[:port], without user, "
      .. "path, query or spaces")
  end
  if o.language ~= nil and not LANGUAGES[o.language] then
    return invalid("language", "language must be \"zh-CN\" or \"en-US\"")
  end
  if o.rate_limit ~= nil and o.rate_limit ~= false
    and (type(o.rate_limit) ~= "number" or o.rate_limit ~= o.rate_limit or o.rate_limit <= 0
      or o.rate_limit == math.huge) then
    return invalid("rate_limit", "rate_limit must be a positive number of requests per second, or false")
  end
  local store = o.rate_limit_store
  if store ~= nil and not ((type(store) == "table" or type(store) == "userdata") and store.reserve) then
    return invalid("rate_limit_store", "rate_limit_store must have a reserve(key, interval, now, max_wait) method")
  end
  for _, name in ipairs({ "logger", "sleep" }) do
    if o[name] ~= nil and type(o[name]) ~= "function" then
      return invalid(name, name .. " must be a function")
    end
  end
end

local NO_OPTIONS = {}   -- read only

local function check_call_options(opts)
  if opts == nil then
    return NO_OPTIONS
  end
  if type(opts) ~= "table" then
    return nil, invalid("opts", "per-call options must be a table")
  end
  opts = shallow_copy(opts)
  local err = check_known(opts, CALL_OPTIONS, "per-call option")
    or check_positive(opts, "timeout", MAX_TIMEOUT) or check_positive(opts, "deadline")
  if err then
    return nil, err
  end
  return opts
end

-- ----------------------------------------------------------------------------
-- The client.

local Client = {}
Client.__index = Client

-- Per-client state that must not show when a client is printed or dumped.
local private = setmetatable({}, { __mode = "k" })

-- Jitter needs randomness that differs between processes: LuaJIT's math.random
-- starts from the same seed everywhere, so nginx workers would back off in step.
-- A Park-Miller generator per client (exact in doubles, same on 5.1 and 5.4).
local function new_random()
  local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  local state = (os.time() + math.floor(core.now() * 1e6) + addr) % 2147483646 + 1
  return function()
    state = (state * 48271) % 2147483647
    return (state - 1) / 2147483646
  end
end

-- Shows where the client talks to, never what it signs with.
function Client:__tostring()
  local endpoint = self.endpoint:gsub("^(%a+://)[^/@]*@", "%1")
  return string.format("tencentcloud.iotexplorer client (region=%s, endpoint=%s%s)",
    self.region, endpoint, self.closed and ", closed" or "")
end

local function interruptible_sleep(seconds)
  return core.sleep(seconds, true)
end

function iot.new(o)
  if o == nil then
    o = {}
  end
  if type(o) ~= "table" then
    return nil, invalid("options", "iot.new expects a table of options")
  end
  o = shallow_copy(o)
  if o.endpoint == nil and (os.getenv("TENCENTCLOUD_IOTEXPLORER_ENDPOINT") or "") ~= "" then
    o.endpoint = os.getenv("TENCENTCLOUD_IOTEXPLORER_ENDPOINT")   -- e.g. what `tciot emulator` prints
  end
  local err = check_new_options(o)
  if err then
    return nil, err
  end

  local region = o.region
  if region == nil then
    region = os.getenv("TENCENTCLOUD_REGION")
    if region == "" then region = nil end
  end
  if region == nil then
    return nil, invalid("region", "region is required (or set TENCENTCLOUD_REGION), e.g. \"ap-guangzhou\"")
  end
  if type(region) ~= "string" or not region:find("^[a-z0-9-]+$") then
    return nil, invalid("region", "region must look like \"ap-guangzhou\" (lowercase letters, digits, dashes)")
  end

  local scheme, host, port = split_endpoint(o.endpoint or DEFAULT_ENDPOINT)
  local session_options = {
    scheme = scheme, host = host, port = port, region = region, language = o.language,
    timeout = o.timeout or 10,
    connect_timeout = o.connect_timeout or 5,
    ca_file = o.ca_file, ca_path = o.ca_path, proxy = o.proxy,
    max_response_bytes = o.max_response_bytes,
    interruptible = true,   -- a plain script's Ctrl-C ends a call at once (ngx.lua turns this off)
  }

  -- Inside nginx, ngx.lua supplies a transport that does not block the worker, ngx.sleep, a rate-limit
  -- store shared by all workers and per-worker jitter; o.nginx = false keeps the plain behaviour.
  if o.nginx ~= nil and type(o.nginx) ~= "boolean" then
    return nil, invalid("nginx", "nginx must be true or false")
  end
  local nginx
  if o.nginx ~= false then
    local ngx_support = require("tencentcloud.iotexplorer.ngx")
    if ngx_support.active() then
      local nerr, field
      nginx, nerr, field = ngx_support.setup(o, session_options)
      if not nginx then
        return nil, invalid(field, nerr)
      end
      o.http_get = nginx.http_get
      o.sts_transport = nginx.transport
    end
  end

  local chain, cerr = credentials.new(o)
  if not chain then
    return nil, cerr
  end

  local ok, session, serr = pcall(core.new_session, session_options)
  if not ok or not session then
    return nil, errors.from_core(serr or { code = errors.INVALID_PARAMETER, message = tostring(session) })
  end

  local sleep = o.sleep or (nginx and nginx.sleep) or interruptible_sleep
  local self = setmetatable({
    region = region,
    endpoint = o.endpoint or DEFAULT_ENDPOINT,
    timeout = o.timeout or 10,
    max_attempts = o.max_attempts or retry.DEFAULT_MAX_ATTEMPTS,
    backoff_base = o.backoff_base or retry.DEFAULT_BASE,
    backoff_cap = o.backoff_cap or retry.DEFAULT_CAP,
    language = o.language,
    logger = o.logger,
    sleep = sleep,
    now = core.now,
    -- Seconds to add to os.time() when signing; learnt from AuthFailure.SignatureExpire.
    clock_offset = 0,
    closed = false,
  }, Client)
  -- Kept outside the client table so that dumping the client shows no secret.
  private[self] = {
    chain = chain, session = session, random = nginx and nginx.random or new_random(),
    transport = nginx and nginx.transport, close_transport = nginx and nginx.close,
  }

  local rate = o.rate_limit
  if rate == nil then
    rate = 20
  end
  if rate then
    self.limiter = limiter.new{
      rate = rate, store = o.rate_limit_store or (nginx and nginx.store), key = o.rate_limit_key or self.endpoint,
      now = core.now, sleep = sleep,
    }
  end
  return self
end

function Client:close()
  if not self.closed then
    self.closed = true
    private[self].session:close()
    many.close(self)
    if private[self].close_transport then
      private[self].close_transport()
    end
  end
  return true
end

-- Logs one attempt; a failing logger must not break the call.
function Client:_log(record)
  if self.logger then
    pcall(self.logger, record)
  end
end

-- One call's state lives in a single table, `call`, handed to retry.run as its options; the steps below are
-- plain functions of it, so a call creates no closures (LuaJIT cannot compile closure creation) and, on
-- the success path without a logger, no table besides `call` itself.

-- Remembers the keys an attempt signed with, so that every error of the call can be scrubbed of them.
local function note_secrets(call, creds)
  local secrets = call.secrets
  if not secrets then
    secrets = {}
    call.secrets = secrets
  end
  secrets[#secrets + 1] = creds.secret_key
  secrets[#secrets + 1] = creds.token
end

-- The deadline ran out between attempts (waiting for the limiter, or nothing left to send with): say so,
-- with the error that led to the wait.
local function out_of_time(call, what)
  local last_err = call.last_err
  local msg = "deadline of " .. tostring(call.deadline) .. "s passed " .. what
  if last_err then
    msg = msg .. "; last error: " .. tostring(last_err)
  end
  return errors.new(errors.TIMEOUT, msg, {
    sent = last_err ~= nil and last_err.sent ~= false, deadline = true, cause = last_err })
end

local function attempt(n, remaining, call)
  local self, p = call.client, call.p
  local started = self.now()
  local creds, cerr = p.chain:get()
  if not creds then
    return nil, cerr
  end

  local waited = 0
  if self.limiter then
    local w, needed = self.limiter:acquire(remaining, nil, call.sleep)
    if not w then
      note_secrets(call, creds)
      return nil, out_of_time(call, string.format("before the rate limiter's next slot (%.3fs away)", needed))
    end
    waited = w
  end

  -- Waiting for the limiter does not eat into `timeout`, only into the deadline.
  local this_timeout = call.timeout
  if remaining then
    local left = remaining - (self.now() - started)
    if left < 0.001 then
      note_secrets(call, creds)
      return nil, out_of_time(call, "before the request could be sent")
    end
    if left < this_timeout then
      this_timeout = left
    end
  end

  -- The request table is the call's own copy of the fields; every attempt rewrites what it changes.
  local req = call.fields
  req.secret_id = creds.secret_id
  req.secret_key = creds.secret_key
  req.token = creds.token
  req.timeout = this_timeout
  req.timestamp = os.time() + self.clock_offset
  -- libcurl silently resends on a reused connection found dead; a write must not go twice.
  req.fresh_connection = call.write

  local sent_at = self.now()
  call.sent = call.sent + 1
  local res, err = call.invoke(p, req)
  if res ~= nil then
    if self.logger then
      self:_log{ action = call.action, attempt = n, duration = self.now() - sent_at, rate_wait = waited,
                 credentials = creds.source, status = "ok",
                 request_id = type(res) == "table" and res.RequestId or nil }
    end
    return res
  end
  note_secrets(call, creds)
  err = errors.redact(errors.from_core(err), call.secrets)
  if self.logger then
    self:_log{ action = call.action, attempt = n, duration = self.now() - sent_at, rate_wait = waited,
               credentials = creds.source, status = "error", code = err.code, message = err.message,
               request_id = err.request_id, http_status = err.http_status,
               retryable = errors.is_retryable(err, call.action) }
  end
  call.last_err = err
  return nil, err
end

local function decide(err, _, call)
  local code = err.code
  if code == "AuthFailure.SignatureExpire" and not call.skew_repaired and type(err.server_date) == "number" then
    -- Our clock is off: sign with the server's time from now on. Once per call, so a server with a broken
    -- Date header cannot make us loop.
    call.skew_repaired = true
    call.client.clock_offset = math.floor(err.server_date - os.time() + 0.5)
    return "now"
  end
  if err.deadline then
    return false
  end
  if type(code) == "string" and code:find("^AuthFailure") then
    -- Temporary keys may have been revoked or rotated: fetch fresh ones and try once more.
    if not call.refetched and call.p.chain:invalidate() then
      call.refetched = true
      return "now"
    end
    if call.refetched then
      err.message = tostring(err.message) .. " (new keys from " .. tostring(call.p.chain:source())
        .. " were rejected too)"
    end
    return false
  end
  return errors.is_retryable(err, call.action) and "backoff"
end

local NO_SECRETS = {}

-- Runs one API call with credentials, rate limit, retries and skew repair. `fields` is the caller's own
-- copy of the action's fields (it becomes the request table); invoke(p, req) is core.call (through
-- p.transport in nginx).
function Client:_perform(action, fields, opts, invoke, sleep)
  local p = private[self]
  local call = {
    -- retry.run's options
    attempt = attempt, decide = decide, max_attempts = self.max_attempts, base = self.backoff_base,
    cap = self.backoff_cap, deadline = opts.deadline, now = self.now, sleep = sleep or self.sleep, random = p.random,
    -- the call's own state
    client = self, p = p, action = action, fields = fields, invoke = invoke, sent = 0,
    timeout = opts.timeout or self.timeout, write = not errors.is_idempotent(action),
  }
  local res, err = retry.run(call)
  if res ~= nil then
    return res
  end
  -- Requests actually made: an attempt stopped by the deadline before sending does not count.
  err.attempts = call.sent
  err.retryable = errors.is_retryable(err, action)
  return nil, errors.redact(err, call.secrets or NO_SECRETS)
end

-- Checks shared by every method: open client, options, params table.
local function prepare(self, params, opts, batch)
  if type(self) ~= "table" or getmetatable(self) ~= Client then
    return nil, nil, invalid("self", "call methods with a colon: client:method(...)")
  end
  if self.closed then
    return nil, nil, errors.new(errors.CLIENT_CLOSED, "the client is closed", { sent = false })
  end
  local o, oerr = check_call_options(opts)
  if not o then
    return nil, nil, oerr
  end
  if params == nil then
    params = {}
  end
  if type(params) ~= "table" then
    return nil, nil, invalid("params", "params must be a table")
  end
  if batch and not BATCH_REGIONS[self.region] then
    return nil, nil, invalid("region", "batch production is not available in region " .. self.region
      .. " (use ap-bangkok, ap-guangzhou, ap-shanghai, ap-shanghai-fsi, eu-frankfurt or na-ashburn)")
  end
  return shallow_copy(params), o
end

local function fail(err)
  err.attempts = err.attempts or 0
  return nil, err
end

local function core_call(p, req)
  if p.transport then
    return p.transport("call", req)
  end
  return core.call(p.session, req)
end

-- DescribeBatchProduction: one batch's details, Status and DownloadUrl.
function Client:describe_batch_production(params, opts)
  local p, o, err = prepare(self, params, opts, true)
  if not p then
    return fail(err)
  end
  err = check_param(p, "ProductId", true) or check_param(p, "BatchProductionId", true)
  if err then
    return fail(err)
  end
  return self:_perform("DescribeBatchProduction",
    { action = "DescribeBatchProduction", version = API_VERSION, params = p }, o, core_call)
end

-- CreateBatchProduction: starts a batch; not retried once it may have reached the server.
function Client:create_batch_production(params, opts)
  local p, o, err = prepare(self, params, opts, true)
  if not p then
    return fail(err)
  end
  err = check_param(p, "ProjectId", true) or check_param(p, "ProductId", true)
    or check_int(p, "BurnMethod", true, 0, 1) or check_int(p, "GenerationMethod", true, 0, 1)
    or check_param(p, "UploadUrl") or check_int(p, "BatchCnt", false, 1)
  if not err and p.GenerationQRCode ~= nil and type(p.GenerationQRCode) ~= "boolean" then
    err = invalid("GenerationQRCode", "GenerationQRCode must be a boolean")
  end
  if not err and p.GenerationMethod == 1 and p.UploadUrl == nil then
    err = invalid("UploadUrl", "UploadUrl is required when GenerationMethod is 1 (file upload)")
  end
  if err then
    return fail(err)
  end
  return self:_perform("CreateBatchProduction",
    { action = "CreateBatchProduction", version = API_VERSION, params = p }, o, core_call)
end

-- GetBatchProductionsList: one page of a project's batches.
function Client:get_batch_productions_list(params, opts)
  local p, o, err = prepare(self, params, opts, true)
  if not p then
    return fail(err)
  end
  err = check_param(p, "ProjectId", true) or check_int(p, "Offset", false, 0) or check_int(p, "Limit", false, 1)
  if err then
    return fail(err)
  end
  return self:_perform("GetBatchProductionsList",
    { action = "GetBatchProductionsList", version = API_VERSION, params = p }, o, core_call)
end

-- Iterates over every batch of a project, a page at a time:
--   for item, err in client:each_batch_production{ ProjectId = "..." } do
--     if not item then print(err) break end
--   end
-- On failure the loop sees item == false and err once, then ends (a nil first
-- value would end a generic for before the body could see the error).
function Client:each_batch_production(params, opts)
  local p, o, err = prepare(self, params, opts, true)
  if p then
    err = check_param(p, "ProjectId", true) or check_int(p, "Offset", false, 0) or check_int(p, "Limit", false, 1)
  end
  local done, page, index, last_page = false, nil, 1, false
  local offset, limit
  if not err then
    offset, limit = p.Offset or 0, p.Limit or PAGE_SIZE
  end

  return function()
    if done then
      return nil
    end
    if err then
      done = true
      err.attempts = err.attempts or 0
      return false, err
    end
    if page == nil or index > #page then
      if last_page then
        done = true
        return nil
      end
      local q = shallow_copy(p)
      q.Offset, q.Limit = offset, limit
      local res, e = self:get_batch_productions_list(q, o)
      if not res then
        done = true
        return false, e
      end
      page = res.BatchProductions or {}
      index = 1
      offset = offset + #page
      local total = res.TotalCnt
      -- A short page or the reported total ends the walk without an extra request.
      last_page = #page < limit or (type(total) == "number" and offset >= total)
      if #page == 0 then
        done = true
        return nil
      end
    end
    local item = page[index]
    index = index + 1
    return item
  end
end

-- Any action of the service, e.g. client:call("DescribeProduct", { ProductId = "..." }).
-- Every action named Describe*, Get* or List* is retried as a read; any other
-- only when the server certainly did not process it.
function Client:call(action, params, opts)
  local p, o, err = prepare(self, params, opts, false)
  if not p then
    return fail(err)
  end
  if type(action) ~= "string" or not action:find("^%u%w*$") then
    return fail(invalid("action", "action must be an API action name such as \"DescribeBatchProduction\""))
  end
  return self:_perform(action, { action = action, version = API_VERSION, params = p }, o, core_call)
end

-- Many calls of one action at once: client:call_many, client:describe_batch_productions (many.lua).
many.extend(Client, private)

-- Waiting for a batch and downloading its device file: see batch.lua.
local batch = require("tencentcloud.iotexplorer.batch")

function Client:wait_batch_production(params, opts)
  return batch.wait(self, params, opts)
end

function Client:download_batch_production(params, path, opts)
  local p = private[self]
  return batch.download(self, params, path, opts, p and function(req)
    if p.transport then
      req.on_progress = nil   -- inside nginx the transfer runs in a thread VM, where no Lua function can go
      return p.transport("download", req)
    end
    return core.download(p.session, req)
  end)
end

return iot

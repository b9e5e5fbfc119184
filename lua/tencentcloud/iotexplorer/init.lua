-- tencentcloud.iotexplorer: the public face of the library.
--
--   local iot = require("tencentcloud.iotexplorer")
--   local client, err = iot.new{ region = "ap-guangzhou" }
--   local res, err = client:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
--
-- The C core signs and performs one request; this file decides everything else: input checks (check.lua,
-- from the action tables in actions.lua), credentials, the rate limiter, retries, clock-skew repair and
-- logging. No function here raises on bad input: failures are returned as nil, err with err an error
-- object (see errors.lua).

local core = require("tencentcloud.iotexplorer.core")
local actions = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local defaults = require("tencentcloud.iotexplorer.defaults")
local errors = require("tencentcloud.iotexplorer.errors")
local retry = require("tencentcloud.iotexplorer.retry")
local credentials = require("tencentcloud.iotexplorer.credentials")
local limiter = require("tencentcloud.iotexplorer.limiter")
local many = require("tencentcloud.iotexplorer.many")

local iot = {
  _VERSION = "0.1.0",
  errors = errors,
  actions = actions,
}

iot.is_error = errors.is_error
iot.array = core.array                 -- iot.array(t) -> t, sent as a JSON array even when empty
iot.empty_array = core.empty_array     -- a read-only empty table sent as []
iot.redis_store = require("tencentcloud.iotexplorer.redis_store").new

local invalid = check.invalid

-- ----------------------------------------------------------------------------
-- Options.

-- iot.new's own options; the credential options belong to credentials.lua, which checks them.
local CLIENT_OPTIONS = {
  "region", "endpoint", "timeout", "connect_timeout", "max_attempts", "backoff_base", "backoff_cap",
  "rate_limit", "rate_limit_store", "rate_limit_key", "language", "proxy", "ca_file", "ca_path", "logger",
  "sleep", "max_response_bytes", "nginx",
}
local NEW_OPTIONS = {}
for _, list in ipairs({ CLIENT_OPTIONS, credentials.OPTIONS }) do
  for _, name in ipairs(list) do
    NEW_OPTIONS[#NEW_OPTIONS + 1] = name
  end
end

local CALL_OPTIONS = { "timeout", "deadline" }

-- Raw (next, not pairs): a caller's __pairs or __index never runs inside the client.
local shallow_copy = check.copy

local function check_rate_limit(o)
  local rate = o.rate_limit
  if rate ~= nil and rate ~= false and (type(rate) ~= "number" or rate ~= rate or rate <= 0 or rate == math.huge) then
    return invalid("rate_limit", "rate_limit must be a positive number of requests per second, or false")
  end
  local store = o.rate_limit_store
  if store ~= nil and not ((type(store) == "table" or type(store) == "userdata") and store.reserve) then
    return invalid("rate_limit_store", "rate_limit_store must have a reserve(key, interval, now, max_wait) method")
  end
end

local function check_new_options(o)
  return check.known(o, NEW_OPTIONS, "option")
    or check.seconds(o, "timeout") or check.seconds(o, "connect_timeout")
    or check.seconds(o, "backoff_base") or check.seconds(o, "backoff_cap")
    or check.integer(o, "max_attempts", 1, 100) or check.integer(o, "max_response_bytes", 1, 2 ^ 30)
    or check.opt_string(o, "proxy") or check.opt_string(o, "ca_file") or check.opt_string(o, "ca_path")
    or check.opt_string(o, "rate_limit_key") or check.one_of(o, "language", actions.LANGUAGES)
    or check.func(o, "logger") or check.func(o, "sleep") or check_rate_limit(o)
end

-- The region: the option, else $TENCENTCLOUD_REGION.
local function resolve_region(o)
  local region = o.region
  if region == nil then
    region = os.getenv(defaults.region_variable)
    if region == "" then region = nil end
  end
  if region == nil then
    return nil, invalid("region", "region is required: pass region = \"ap-guangzhou\" (tciot: --region) or set "
      .. defaults.region_variable)
  end
  if type(region) ~= "string" or not region:find("^[a-z0-9-]+$") then
    return nil, invalid("region", "region must look like \"ap-guangzhou\" (lowercase letters, digits, dashes)")
  end
  return region
end

-- The endpoint: the option, else $TENCENTCLOUD_IOTEXPLORER_ENDPOINT, else the service's; parsed once here.
local function resolve_endpoint(o)
  local url, name = o.endpoint, "endpoint"
  if url == nil then
    url = os.getenv(defaults.endpoint_variable)
    name = defaults.endpoint_variable
    if url == nil or url == "" then
      url, name = actions.DEFAULT_ENDPOINT, "endpoint"
    end
  end
  return check.endpoint(url, name)
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
  local err = check.known(opts, CALL_OPTIONS, "per-call option") or check.seconds(opts, "timeout")
    or check.seconds(opts, "deadline")
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

-- A seed that differs between processes and between clients of one process.
local function process_seed()
  local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  local value = os.time() + math.floor(core.now() * 1e6) + addr
  return function() return 0, value end
end

-- Shows where the client talks to, never what it signs with.
function Client:__tostring()
  return string.format("tencentcloud.iotexplorer client (region=%s, endpoint=%s%s)",
    self.region, self.endpoint, self.closed and ", closed" or "")
end

-- What the core session holds for the client's whole life: everything fixed per client.
local function session_options(o, region, endpoint)
  return {
    scheme = endpoint.scheme, host = endpoint.host, port = endpoint.port, region = region, language = o.language,
    timeout = o.timeout or defaults.timeout, connect_timeout = o.connect_timeout or defaults.connect_timeout,
    ca_file = o.ca_file, ca_path = o.ca_path, proxy = o.proxy, max_response_bytes = o.max_response_bytes,
    interruptible = true,   -- a plain script's Ctrl-C ends a call at once (ngx.lua turns this off)
  }
end

-- Inside nginx, ngx.lua supplies a transport that does not block the worker, ngx.sleep, a rate-limit store
-- shared by all workers and per-worker jitter; nginx = false keeps the plain behaviour.
local function nginx_support(o, session_opts)
  if o.nginx == false then
    return nil
  end
  local ngx_support = require("tencentcloud.iotexplorer.ngx")
  if not ngx_support.active() then
    if o.nginx ~= nil and o.nginx ~= true and type(o.nginx) ~= "table" then
      return nil, invalid("nginx", "nginx must be true, false or a table { thread_pool = ..., shared_dict = ... }")
    end
    return nil
  end
  local nginx, nerr, field = ngx_support.setup(o, session_opts)
  if not nginx then
    return nil, invalid(field, nerr)
  end
  return nginx
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
  local err = check_new_options(o)
  if err then
    return nil, err
  end
  local region, endpoint
  region, err = resolve_region(o)
  if region then
    endpoint, err = resolve_endpoint(o)
  end
  if err then
    return nil, err
  end

  local session_opts = session_options(o, region, endpoint)
  local nginx
  nginx, err = nginx_support(o, session_opts)
  if err then
    return nil, err
  end
  if nginx then
    o.http_get = nginx.http_get
  end

  local chain, cerr = credentials.new(o)
  if not chain then
    return nil, cerr
  end

  local ok, session, serr = pcall(core.new_session, session_opts)
  if not ok or not session then
    return nil, errors.from_core(serr or { code = errors.INVALID_PARAMETER, message = tostring(session) })
  end

  local sleep = o.sleep or (nginx and nginx.sleep) or interruptible_sleep
  local self = setmetatable({
    region = region,
    endpoint = endpoint.url,
    timeout = session_opts.timeout,
    max_attempts = o.max_attempts or retry.DEFAULT_MAX_ATTEMPTS,
    backoff_base = o.backoff_base or retry.DEFAULT_BASE,
    backoff_cap = o.backoff_cap or retry.DEFAULT_CAP,
    language = o.language,
    logger = o.logger,
    sleep = sleep,
    now = core.now,
    rate_limit_key = o.rate_limit_key,
    -- Seconds to add to os.time() when signing; learnt from AuthFailure.SignatureExpire.
    clock_offset = 0,
    closed = false,
  }, Client)
  -- Kept outside the client table so that dumping the client shows no secret.
  private[self] = {
    chain = chain, session = session, random = nginx and nginx.random or retry.new_random(process_seed()),
    transport = nginx and nginx.transport, close_transport = nginx and nginx.close,
  }

  local rate = o.rate_limit
  if rate == nil then
    rate = actions.RATE_LIMIT
  end
  if rate then
    self.limiter = limiter.new{
      rate = rate, store = o.rate_limit_store or (nginx and nginx.store), now = core.now, sleep = sleep,
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

-- `local client <close> = iot.new{...}` on Lua 5.4.
Client.__close = Client.close

-- Logs one attempt; a failing logger must not break the call.
function Client:_log(record)
  if self.logger then
    pcall(self.logger, record)
  end
end

local perform = require("tencentcloud.iotexplorer.perform")
perform.init(private)
Client._perform = perform.run

-- Many calls of one action at once: client:call_many, client:describe_batch_productions (many.lua).
many.extend(Client, private)

-- ----------------------------------------------------------------------------
-- Methods.

-- Checks shared by every method: open client, options, params table; then, for an action of actions.lua,
-- its table's checks (the request is returned), else a copy of the params as given (client:call).
local function prepare(self, params, opts, action)
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
  if not action then
    return shallow_copy(params), o
  end
  local req, err = perform.checked_request(self.region, action, params)
  if not req then
    return nil, nil, err
  end
  return req, o
end

local function fail(err)
  err.attempts = err.attempts or 0
  return nil, err
end

-- One typed method per action of actions.lua, e.g. client:describe_batch_production(params, opts).
local function typed_method(action)
  return function(self, params, opts)
    local req, o, err = prepare(self, params, opts, action)
    if not req then
      return fail(err)
    end
    return self:_perform(action.name, req, o)
  end
end

for _, action in ipairs(actions.list) do
  Client[action.method] = typed_method(action)
end

-- Iterates over every item of a paged action (GetBatchProductionsList), a page at a time:
--   for item, err in client:each_batch_production{ ProjectId = "..." } do
--     if not item then print(err) break end
--   end
-- On failure the loop sees item == false and err once, then ends (a nil first value would end a generic
-- for before the body could see the error).
local function pager(self, action, params, opts)
  local paged = action.paged
  local req, o, err = prepare(self, params, opts, action)
  local p = req and req.params
  local done, page, index, last_page = false, nil, 1, false
  local offset, limit
  if p then
    offset, limit = p[paged.offset] or 0, p[paged.limit] or paged.page_size
  end

  return function()
    if done then
      return nil
    end
    if err then
      done = true
      return false, errors.is_error(err) and (fail(err) or err) or err
    end
    if page == nil or index > #page then
      if last_page then
        done = true
        return nil
      end
      local q = shallow_copy(p)
      q[paged.offset], q[paged.limit] = offset, limit
      local res, e = Client[action.method](self, q, o)
      if not res then
        done = true
        return false, e
      end
      page = res[paged.items] or {}
      index = 1
      offset = offset + #page
      local total = res[paged.total]
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

function Client:each_batch_production(params, opts)
  return pager(self, actions.by_name.GetBatchProductionsList, params, opts)
end

-- Any action of the service, e.g. client:call("DescribeProduct", { ProductId = "..." }). Parameters go as
-- they are given (no action table applies). Describe*, Get* and List* actions are retried as reads; any
-- other only when the server certainly did not process it.
function Client:call(action, params, opts)
  local p, o, err = prepare(self, params, opts, nil)
  if not p then
    return fail(err)
  end
  if type(action) ~= "string" or not action:find("^%u%w*$") then
    return fail(invalid("action", "action must be an API action name such as \"DescribeBatchProduction\""))
  end
  return self:_perform(action, perform.request(action, actions.VERSION, p), o)
end

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
      req.keep_partial = nil  -- the next attempt may run in another thread VM, whose session has no partial
      return p.transport("download", req)
    end
    return core.download(p.session, req)
  end)
end

return iot

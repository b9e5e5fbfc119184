-- tencentcloud.iotexplorer.redis_store: one rate limit for a fleet (many processes, nginx workers, machines).
--
--   local store = iot.redis_store("redis://:password@10.0.0.5:6379/0", { fleet_size = 4 })
--   local client = iot.new{ region = "ap-guangzhou", rate_limit_store = store }
--
-- A store for limiter.lua (see its contract). Each reservation is one round trip: one Lua script, run
-- atomically by Redis, that spaces admissions evenly per key (GCRA with no burst: the fleet-wide form of the
-- in-process limiter). The script reads Redis's own clock (TIME), not the caller's `now`, so machines whose
-- clocks differ agree, and however many clients share a key no sliding second sees more than the rate.
-- The caller sleeps until its slot; no connection is held while it waits.
--
-- When Redis fails (refused, a timeout, an error reply):
--   on_failure = "local" (default): this process spaces its own requests at rate / fleet_size (a memory
--     store), logs one record when the outage starts and one when it ends, and tries Redis again at most
--     every RETRY_INTERVAL seconds, so it is back on the shared limit within a second of Redis returning.
--   on_failure = "error": reserve returns nil, nil, err (ClientError.RateLimiterUnavailable, sent = false);
--     the client returns that error and sends nothing.
-- A script flushed from the server (restart, failover, SCRIPT FLUSH) costs no failure: EVALSHA, then EVAL on
-- NOSCRIPT. Passwords are never part of a message, a log record or tostring(store).
--
-- Transport: plain Lua uses hiredis (redis_core, blocking, timeouts in C). Inside nginx, requests and timers
-- use cosockets (resty.redis, Debian's lua-nginx-redis as nginx.redis) with nginx's keepalive pool, so the
-- event loop is never blocked; phases without cosockets (init_worker, log...) fall back to hiredis.
local errors = require("tencentcloud.iotexplorer.errors")
local limiter = require("tencentcloud.iotexplorer.limiter")

local M = {}

M.DEFAULT_PREFIX = "tciot-rl:"
M.DEFAULT_TIMEOUT = 0.1       -- seconds, for connecting and for each command
M.RETRY_INTERVAL = 0.25       -- while Redis is down, seconds between attempts to reach it again
M.KEEPALIVE_TIMEOUT = 60      -- nginx: seconds an idle pooled connection stays open
M.KEEPALIVE_POOL = 32         -- nginx: pooled connections per worker

-- KEYS[1]: the key. ARGV[1]: interval, ARGV[2]: max_wait (-1: none), ARGV[3]: the earliest slot the caller
-- accepts, from now (0 but right after an outage: see Store:reserve); all in microseconds.
-- Returns { 1, wait } (reserved; send in `wait` microseconds) or { 0, wait } (wait > max_wait: nothing
-- reserved). The next free slot ("theoretical arrival time") is kept as an integer string: Redis's Lua
-- prints numbers with 14 digits, too few for microseconds since 1970.
M.SCRIPT = [[
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call("GET", KEYS[1])) or now
local earliest = now + tonumber(ARGV[3])
if tat < earliest then tat = earliest end
local wait = tat - now
local max_wait = tonumber(ARGV[2])
if max_wait >= 0 and wait > max_wait then return { 0, wait } end
tat = tat + tonumber(ARGV[1])
redis.call("SET", KEYS[1], string.format("%.0f", tat), "PX", math.ceil((tat - now) / 1000) + 1000)
return { 1, wait }
]]
-- SHA-1 of M.SCRIPT (spec/redis_spec.lua checks it against SCRIPT LOAD).
M.SCRIPT_SHA = "1a610de92674f6a02e20c2c2f0771b273a738e4a"

local Store = {}
Store.__index = Store

-- ----------------------------------------------------------------------------
-- The URL: redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path/to/socket

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Returns { host, port, path, db, user, password, display } or nil, message (never quoting the URL: it may
-- hold a password).
local function parse_url(url)
  if type(url) ~= "string" then
    return nil, "the Redis URL must be a string such as \"redis://127.0.0.1:6379/0\""
  end
  local scheme, rest = url:match("^(%a+)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "redis" and scheme ~= "unix" then
    return nil, "the Redis URL must start with redis:// or unix://"
  end
  local t = {}
  local userinfo, after = rest:match("^([^@/]*)@(.*)$")
  if userinfo then
    rest = after
    local user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then
      return nil, "the Redis URL's credentials must read :password@ or user:password@"
    end
    t.user = user ~= "" and unescape(user) or nil
    t.password = unescape(password)
  end
  if scheme == "unix" then
    if not rest:find("^/.") then
      return nil, "a unix:// Redis URL needs an absolute socket path, e.g. unix:///run/redis/redis.sock"
    end
    t.path = rest
    t.display = "unix://" .. rest
    return t
  end
  local host, port, db = rest:match("^%[([%x:.]+)%]:?(%d*)/?(%d*)$")
  if not host then
    host, port, db = rest:match("^([%w.-]+):?(%d*)/?(%d*)$")
  end
  if not host or host == "" then
    return nil, "the Redis URL must read redis://[:password@]host[:port][/db]"
  end
  t.host, t.port, t.db = host, tonumber(port) or 6379, tonumber(db)
  if t.port < 1 or t.port > 65535 then
    return nil, "the Redis URL's port must be from 1 to 65535"
  end
  t.display = "redis://" .. (host:find(":") and ("[" .. host .. "]") or host) .. ":" .. t.port
    .. (t.db and ("/" .. t.db) or "")
  return t
end

M.parse_url = parse_url

-- ----------------------------------------------------------------------------
-- Connections. Both kinds answer command(...) -> value | nil, message, kind ("reply" or "io").

-- Messages from the server or the socket, scrubbed of the password all the same.
function Store:_clean(message)
  message = tostring(message)
  if self.target.password and self.target.password ~= "" then
    message = errors.scrub(message, { self.target.password })
  end
  return message
end

-- AUTH and SELECT on a new connection. Returns true or nil, message, kind.
local function prepare_connection(conn, target)
  if target.password then
    local ok, err, kind
    if target.user then
      ok, err, kind = conn:command("AUTH", target.user, target.password)
    else
      ok, err, kind = conn:command("AUTH", target.password)
    end
    if not ok then
      return nil, "authentication failed: " .. tostring(err), kind
    end
  end
  if target.db and target.db ~= 0 then
    local ok, err, kind = conn:command("SELECT", target.db)
    if not ok then
      return nil, "SELECT " .. target.db .. " failed: " .. tostring(err), kind
    end
  end
  return true
end

-- hiredis, one connection per store and process: a store made before a fork (nginx's init_by_lua, a
-- forking server) connects again in each child instead of sharing the parent's socket.
local redis_core

local function native_module()
  redis_core = redis_core or require("tencentcloud.iotexplorer.redis_core")
  return redis_core
end

function Store:_native()
  local core = native_module()
  local conn = self.conn
  if conn and conn:is_open() and self.conn_pid == core.pid() then
    return conn
  end
  local t = self.target
  local err
  conn, err = core.connect{ host = t.host, port = t.port, path = t.path,
    connect_timeout = self.connect_timeout, timeout = self.timeout }
  if not conn then
    return nil, "cannot connect: " .. tostring(err), "io"
  end
  local ok, perr, kind = prepare_connection(conn, t)
  if not ok then
    conn:close()
    return nil, perr, kind
  end
  self.conn, self.conn_pid = conn, core.pid()
  return conn
end

-- nginx cosockets: one pooled connection per reservation, back to the pool right after the reply.
local resty_redis
local CosocketConn = {}
CosocketConn.__index = CosocketConn

function CosocketConn:command(name, ...)
  local res, err = self.red[name:lower()](self.red, ...)
  if res == nil then
    return nil, err, "io"
  end
  if res == false and err then
    return nil, err, "reply"
  end
  return res
end

function Store:_cosocket()
  if not resty_redis then
    local ok, lib = pcall(require, "resty.redis")
    if not ok then
      ok, lib = pcall(require, "nginx.redis")  -- Debian's lua-nginx-redis
    end
    if not ok then
      return nil, "resty.redis is not installed (apt-get install lua-nginx-redis, or opm get "
        .. "openresty/lua-resty-redis)", "io"
    end
    resty_redis = lib
  end
  local red, err = resty_redis:new()
  if not red then
    return nil, "cannot create a cosocket: " .. tostring(err), "io"
  end
  red:set_timeout(math.ceil(self.connect_timeout * 1000))
  local t = self.target
  if not self.pool then
    -- nginx's keepalive pool is per worker and per name: one per target and credentials (hashed: pool names
    -- can show in nginx's debug log), so stores with different passwords never share a connection.
    self.pool = "tciot-redis:" .. self.display .. "#"
      .. rawget(_G, "ngx").md5(tostring(t.user) .. "\0" .. tostring(t.password))
  end
  local ok
  if t.path then
    ok, err = red:connect("unix:" .. t.path, { pool = self.pool })
  else
    ok, err = red:connect(t.host, t.port, { pool = self.pool })
  end
  if not ok then
    return nil, "cannot connect: " .. tostring(err), "io"
  end
  red:set_timeout(math.ceil(self.timeout * 1000))
  local conn = setmetatable({ red = red }, CosocketConn)
  if (red:get_reused_times() or 0) == 0 then
    local perr, kind
    ok, perr, kind = prepare_connection(conn, t)
    if not ok then
      red:close()
      return nil, perr, kind
    end
  end
  return conn
end

local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local function cosockets_usable()
  local n = rawget(_G, "ngx")
  return n and type(n.get_phase) == "function" and n.socket and COSOCKET_PHASES[n.get_phase()] or false
end

-- ----------------------------------------------------------------------------
-- One reservation.

-- Whole microseconds, as the script's integer arithmetic wants them ("%.0f": any finite size).
local function to_us(seconds)
  return string.format("%.0f", math.ceil(seconds * 1e6))
end

-- Waits longer than this are "no limit" for the script.
local UNLIMITED = 1e9

-- Runs op(conn, ...) -> value | nil, message, kind on a connection of the right kind for this phase, then
-- gives the connection back (nginx's pool) or keeps it (hiredis) when it is still good.
function Store:_run(op, ...)
  local cosocket = cosockets_usable()
  local conn, err, kind
  if cosocket then
    conn, err, kind = self:_cosocket()
  else
    conn, err, kind = self:_native()
  end
  if not conn then
    return nil, err, kind
  end
  local res
  res, err, kind = op(conn, ...)
  if cosocket then
    if res or kind == "reply" then
      conn.red:set_keepalive(M.KEEPALIVE_TIMEOUT * 1000, M.KEEPALIVE_POOL)
    else
      conn.red:close()
    end
  elseif not res and kind == "reply" then
    -- An error reply leaves the connection usable, but a replica or a server still loading says the same
    -- again: start afresh next time.
    conn:close()
  end
  return res, err, kind
end

-- EVALSHA, and EVAL when the server does not have the script (restarted, failed over, flushed).
local function run_script(conn, k, iv, mw, nb)
  local res, err, kind = conn:command("EVALSHA", M.SCRIPT_SHA, "1", k, iv, mw, nb)
  if not res and kind == "reply" and tostring(err):find("^NOSCRIPT") then
    res, err, kind = conn:command("EVAL", M.SCRIPT, "1", k, iv, mw, nb)
  end
  return res, err, kind
end

local function ping(conn)
  return conn:command("PING")
end

-- Returns reply (the script's { reserved, wait_us }) or nil, message.
function Store:_eval(key, interval, max_wait, not_before)
  local res, err, kind = self:_run(run_script, self.prefix .. key, to_us(interval),
    max_wait >= UNLIMITED and "-1" or to_us(max_wait), to_us(not_before))
  if not res then
    return nil, (kind == "reply" and "error reply: " or "") .. tostring(err)
  end
  if type(res) ~= "table" or type(res[2]) ~= "number" then
    return nil, "unexpected reply to the rate-limit script"
  end
  return res
end

function Store:_log(record)
  record.store = self.display
  if self.logger then
    pcall(self.logger, record)
    return
  end
  local line = "tencentcloud.iotexplorer: rate-limit store " .. self.display .. ": " .. record.message
  local n = rawget(_G, "ngx")
  if n and n.log and n.WARN then
    n.log(n.WARN, line)
  else
    io.stderr:write(line, "\n")
  end
end

-- The local share of one process: rate / fleet_size, rounded down to whole requests per second (each of
-- N processes sending 6.4/s can put 7 requests into some second, and 3 x 7 is over 20).
local function local_interval(interval, fleet_size)
  local rate = 1 / interval / fleet_size
  if rate >= 1 then
    rate = math.floor(rate)
  end
  return 1 / rate
end

-- Moving between the shared and the local limit without a burst:
-- * Redis fails: this process's first local slot comes one local interval after its last shared slot,
--   not at once (every process falling back together would otherwise each send at once).
-- * Redis is back: the first shared slot is no earlier than the next local one, so requests already
--   waiting on the local schedule are not doubled by the shared one starting afresh.
function Store:reserve(key, interval, now, max_wait)
  if not (self.down and now < self.retry_at) then
    local not_before = 0
    if self.down then
      local next_local = self.fallback.next[key]
      if next_local and next_local > now then
        not_before = next_local - now
      end
    end
    local res, err = self:_eval(key, interval, max_wait, not_before)
    if res then
      if self.down then
        self:_log{ event = "rate_limit_store_up", down_for = now - self.down_since,
          message = string.format("reachable again after %.1f s; the shared limit applies", now - self.down_since) }
        self.down = false
      end
      local wait = res[2] / 1e6
      if res[1] == 1 then
        self.last_slot[key] = now + wait
        return wait
      end
      return nil, wait
    end
    self.last_error = self:_clean(err)
    self.retry_at = now + M.RETRY_INTERVAL
    if not self.down then
      self.down, self.down_since = true, now
      self:_log{ event = "rate_limit_store_down", error = self.last_error, on_failure = self.on_failure,
        message = "unavailable (" .. self.last_error .. "); " .. (self.on_failure == "local"
          and string.format("each process keeps 1/%d of the limit on its own until it is back", self.fleet_size)
          or "calls fail with " .. errors.RATE_LIMITER_UNAVAILABLE .. " until it is back") }
    end
  end
  if self.on_failure == "error" then
    return nil, nil, errors.new(errors.RATE_LIMITER_UNAVAILABLE, "the rate-limit store " .. self.display
      .. " is unavailable (" .. tostring(self.last_error) .. "); nothing was sent", { sent = false })
  end
  local local_iv = local_interval(interval, self.fleet_size)
  local last = self.last_slot[key]
  if last then
    self.last_slot[key] = nil
    local next_local = self.fallback.next[key]
    if not next_local or next_local < last + local_iv then
      self.fallback.next[key] = last + local_iv
    end
  end
  return self.fallback:reserve(key, local_iv, now, max_wait)
end

-- Connects, authenticates and pings now, to find a wrong URL or password at start-up. Returns true or nil, err.
function Store:check()
  local ok, err = self:_run(ping)
  if ok then
    return true
  end
  return nil, errors.new(errors.RATE_LIMITER_UNAVAILABLE, "the rate-limit store " .. self.display
    .. " is unavailable (" .. self:_clean(err) .. ")", { sent = false })
end

function Store:close()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

function Store:__tostring()
  return "tencentcloud.iotexplorer redis store (" .. self.display .. (self.down and ", down" or "") .. ")"
end

-- ----------------------------------------------------------------------------

local OPTIONS = {
  on_failure = true, fleet_size = true, logger = true, prefix = true, connect_timeout = true, timeout = true,
}

local function positive(v)
  return v == nil or (type(v) == "number" and v > 0 and v <= 86400)
end

-- iot.redis_store(url, opts) -> store | nil, err. opts: on_failure ("local" | "error"), fleet_size (processes
-- sharing the limit, default 1: the local fallback's share), logger (function(record); default: nginx's
-- error log or stderr), prefix (of the Redis keys, default "tciot-rl:"), connect_timeout and timeout
-- (seconds, default 0.1 each).
function M.new(url, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    return nil, errors.invalid("opts", "redis_store options must be a table")
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      return nil, errors.invalid(tostring(k), "unknown redis_store option '" .. tostring(k) .. "'")
    end
  end
  local target, why = parse_url(url)
  if not target then
    return nil, errors.invalid("url", why)
  end
  local on_failure = opts.on_failure or "local"
  if on_failure ~= "local" and on_failure ~= "error" then
    return nil, errors.invalid("on_failure", "on_failure must be \"local\" or \"error\"")
  end
  local fleet = opts.fleet_size or 1
  if type(fleet) ~= "number" or fleet < 1 or fleet ~= math.floor(fleet) or fleet > 1e6 then
    return nil, errors.invalid("fleet_size", "fleet_size must be a whole number of processes, 1 or more")
  end
  for _, name in ipairs({ "connect_timeout", "timeout" }) do
    if not positive(opts[name]) then
      return nil, errors.invalid(name, name .. " must be a positive number of seconds")
    end
  end
  if opts.logger ~= nil and type(opts.logger) ~= "function" then
    return nil, errors.invalid("logger", "logger must be a function")
  end
  if opts.prefix ~= nil and type(opts.prefix) ~= "string" then
    return nil, errors.invalid("prefix", "prefix must be a string")
  end
  return setmetatable({
    target = target, display = target.display, on_failure = on_failure, fleet_size = fleet,
    logger = opts.logger, prefix = opts.prefix or M.DEFAULT_PREFIX,
    connect_timeout = opts.connect_timeout or M.DEFAULT_TIMEOUT, timeout = opts.timeout or M.DEFAULT_TIMEOUT,
    fallback = limiter.memory_store(), last_slot = {}, down = false, retry_at = 0,
  }, Store)
end

return M

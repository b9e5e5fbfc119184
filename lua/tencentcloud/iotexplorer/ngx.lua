-- tencentcloud.iotexplorer.ngx: what changes inside nginx (OpenResty, or nginx with the Lua module).
--
-- iot.new() calls setup() when it runs inside nginx; users only need the nginx.conf lines:
--
--   thread_pool iotexplorer threads=16;              # main context: where the native calls run
--   http {
--     lua_shared_dict iotexplorer 1m;                # one rate limit for all workers
--     lua_package_cpath "/usr/local/lib/lua/5.1/?.so;;";
--     ...
--   }
--
-- What it changes, and why:
-- * Transport: the core's call is blocking libcurl. Inside a request or a timer it runs in nginx's thread
--   pool (ngx.run_worker_thread), so the worker's event loop goes on serving other requests meanwhile. The
--   thread VM receives only plain tables (the request) and returns plain tables (the Response or the
--   core's error), so the client wraps them into the same error objects as outside nginx. Each thread VM
--   keeps its own core sessions (one per set of session options), so keep-alive works across calls.
--   Where nginx cannot yield (init_by_lua, init_worker, set_by_lua, log and filter phases) the call runs
--   in the worker itself, blocking, on a session created for that process (never one made before a fork).
-- * Rate limit: a store on ngx.shared.DICT, shared by every worker (see shared_store below).
-- * Sleeping (limiter and retries): ngx.sleep where nginx can yield, the core's sleep elsewhere.
-- * The CVM-role metadata fetch (credentials.lua) runs in the thread pool too.
-- * Retry jitter: each worker reseeds its own generator, so workers forked from one client do not back off
--   in step.

local retry = require("tencentcloud.iotexplorer.retry")

local M = {}

M.DEFAULT_THREAD_POOL = "iotexplorer"
M.DEFAULT_SHARED_DICT = "iotexplorer"

-- Phases in which a Lua handler may yield: ngx.sleep, cosockets and ngx.run_worker_thread work there.
local YIELDABLE = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}
-- ngx.run_worker_thread (lua-nginx-module 0.10.23) is allowed in these.
local THREADABLE = { rewrite = true, access = true, content = true, timer = true }

local THIS_MODULE = "tencentcloud.iotexplorer.ngx"

-- True when running in an nginx worker or master Lua VM (not in a worker-thread VM, which has a
-- reduced `ngx` table without ngx.run_worker_thread).
function M.active()
  local n = rawget(_G, "ngx")
  return type(n) == "table" and type(n.config) == "table" and n.config.ngx_lua_version ~= nil
    and type(n.run_worker_thread) == "function" and type(n.get_phase) == "function"
end

local function phase()
  return ngx.get_phase()
end

-- True where call_many may run its items in light threads: phases whose calls go to the thread pool.
function M.can_spawn()
  return THREADABLE[phase()] == true
end

-- ----------------------------------------------------------------------------
-- Sleeping

-- ngx.sleep where the current phase can yield, the core's nanosleep elsewhere. nginx's timers count
-- whole milliseconds from the event loop's cached clock, which can lag: check the monotonic clock on
-- waking and top up, so the limiter's spacing is never shortened.
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then
    return
  end
  local core = require("tencentcloud.iotexplorer.core")
  if not YIELDABLE[phase()] then
    core.sleep(seconds)
    return
  end
  local wake = core.now() + seconds
  ngx.sleep(math.ceil(seconds * 1000) / 1000)
  for _ = 1, 100 do
    local left = wake - core.now()
    if left <= 0 then
      break
    end
    ngx.sleep(math.ceil(left * 1000) / 1000)
  end
end

-- ----------------------------------------------------------------------------
-- Rate-limit store on ngx.shared.DICT
--
-- Time (the limiter's monotonic clock, the same in every worker of one machine) is cut into slots of
-- `interval` seconds; slot k starts at k * interval. A request owns a slot when dict:add() of the slot's
-- key succeeds: add is atomic across workers, so each slot has exactly one owner, and owners send no
-- sooner than their slot's start. Two requests are therefore at least `interval` apart, whichever worker
-- sent them, which is the limiter's even spacing (and its margin) across the whole nginx.
-- A hint key remembers the first slot that may be free, so a reservation costs one or two dict calls
-- even with hundreds of callers queued. Slot keys expire shortly after their slot has passed.
--
-- Keys are "<prefix><key>|<interval>#<slot>": clients with different rates keep separate grids (use
-- one rate per rate_limit_key to share one budget).

local SharedStore = {}
SharedStore.__index = SharedStore

-- dict: an ngx.shared.DICT (or any object with get, set and add of the same meaning).
function M.shared_store(dict, prefix)
  if type(dict) == "string" then
    local name = dict
    dict = rawget(_G, "ngx") and ngx.shared and ngx.shared[name]
    if not dict then
      return nil, "no lua_shared_dict named \"" .. name .. "\""
    end
  end
  return setmetatable({ dict = dict, prefix = prefix or "tciot-rl:" }, SharedStore)
end

-- Slots older than this many seconds past their start are forgotten.
local SLOT_TTL = 2

function SharedStore:reserve(key, interval, now, max_wait)
  local dict = self.dict
  local base = self.prefix .. key .. "|" .. string.format("%.17g", interval)
  local k = math.ceil(now / interval)
  local hint = dict:get(base)
  if type(hint) == "number" and hint > k then
    k = hint
  end
  while true do
    local wait = k * interval - now
    if wait < 0 then
      wait = 0
    end
    if wait > max_wait then
      return nil, wait
    end
    local ok, err = dict:add(base .. "#" .. string.format("%d", k), true, wait + SLOT_TTL)
    if ok then
      -- Another worker may lower the hint again with an older value; that only costs a probe.
      dict:set(base, k + 1, wait + SLOT_TTL)
      return wait
    end
    if err ~= "exists" then
      -- A dict error (e.g. "no memory" with every entry still live): fail safe by waiting a slot.
      return nil, wait + interval
    end
    k = k + 1
  end
end

-- ----------------------------------------------------------------------------
-- The native call, in a worker-thread VM (called by ngx.run_worker_thread with plain values only).

local thread_sessions = {}
local thread_session_count = 0
local MAX_THREAD_SESSIONS = 32

local function session_key(o)
  return table.concat({
    tostring(o.scheme), tostring(o.host), tostring(o.port), tostring(o.region), tostring(o.language),
    tostring(o.service), tostring(o.timeout), tostring(o.connect_timeout), tostring(o.ca_file), tostring(o.ca_path),
    tostring(o.proxy), tostring(o.max_response_bytes),
  }, "\0")
end

-- The session cached under key, made with opts on first use.
local function cached_session(cache, key, opts)
  local s = cache[key]
  if s then
    return s
  end
  local err
  s, err = require("tencentcloud.iotexplorer.core").new_session(opts)
  if s then
    cache[key] = s
  end
  return s, err
end

-- kind: "call" or "download"; session_opts: core.new_session's options, and
-- key, session_key(session_opts), computed once by the transport; req: the core's request table. Returns
-- what the core returns: Response | nil, err (plain tables).
function M.thread_call(kind, session_opts, req, key)
  local s = thread_sessions[key]
  if not s then
    if thread_session_count >= MAX_THREAD_SESSIONS then
      for k, old in pairs(thread_sessions) do
        old:close()
        thread_sessions[k] = nil
      end
      thread_session_count = 0
    end
    local err
    s, err = cached_session(thread_sessions, key, session_opts)
    if not s then
      return nil, err
    end
    thread_session_count = thread_session_count + 1
  end
  return require("tencentcloud.iotexplorer.core")[kind](s, req)
end

-- ----------------------------------------------------------------------------
-- The transport the client uses inside nginx.

local function session_error(message)
  return { code = "ClientError.SessionError", message = message, sent = false }
end

-- Turns a failed ngx.run_worker_thread into the core's error shape.
local function thread_failure(pool, message)
  message = tostring(message)
  if message:find("thread pool .* not found") then
    return session_error("nginx has no thread pool \"" .. pool .. "\": add `thread_pool " .. pool
      .. " threads=16;` to the main context of nginx.conf (or pass nginx = { thread_pool = \"...\" })")
  end
  if message:find("unsupported Lua type", 1, true) then
    -- Only strings, numbers, booleans, tables (and cjson.null) cross into the thread VM.
    return { code = "ClientError.InvalidParameter", field = "params", sent = false,
      message = "params can hold only strings, numbers, booleans and tables inside nginx: " .. message }
  end
  if message:find("task_post failed", 1, true) then
    -- The pool's queue is full: nothing was sent, so the client may retry.
    return { code = "ClientError.NetworkError", message = "nginx thread pool \"" .. pool
      .. "\" queue is full (raise max_queue)", sent = false }
  end
  -- The thread VM failed (e.g. the core could not be loaded there: check lua_package_cpath).
  return session_error("the worker thread failed: " .. message)
end

-- Returns transport(kind, req) -> Response | nil, err, with per-process sessions for the blocking fallback.
local function new_transport(pool, session_opts, location)
  local core = require("tencentcloud.iotexplorer.core")
  local local_sessions = {} -- pid -> session, for phases that cannot use the thread pool
  local key = session_key(session_opts)
  -- With an internal proxy location, calls go through nginx's upstream where subrequests work (ngx_http.lua).
  local subrequest = location and require("tencentcloud.iotexplorer.ngx_http").new(location, session_opts)

  local function blocking(kind, req)
    local s, err = cached_session(local_sessions, ngx.worker.pid(), session_opts)
    if not s then
      return nil, err
    end
    return core[kind](s, req)
  end

  local function transport(kind, req)
    if subrequest then
      local handled, res, err = subrequest(kind, req)
      if handled ~= nil then
        if handled then return res, err end
        return nil, res
      end
    end
    if not THREADABLE[phase()] then
      return blocking(kind, req)
    end
    if kind == "call" and type(req.params) == "table" then
      -- A table crossing into the thread VM loses its metatable, and with it the array marker (iot.array,
      -- iot.empty_array): encode here and let the thread send the text as it is.
      local body, err = core.json_encode(req.params, "params")
      if not body then
        return nil, err
      end
      local copy = {}
      for k, v in pairs(req) do copy[k] = v end
      copy.params, copy.body = nil, body
      req = copy
    end
    local ok, res, err = ngx.run_worker_thread(pool, THIS_MODULE, "thread_call", kind, session_opts, req,
      key)
    if not ok then
      return nil, thread_failure(pool, res)
    end
    return res, err
  end

  local function close()
    local pid = ngx.worker.pid()
    if local_sessions[pid] then
      local_sessions[pid]:close()
      local_sessions[pid] = nil
    end
  end

  return transport, close
end

-- The CVM role's metadata fetch (credentials.http_get, a blocking core.http_get): in the thread pool
-- where possible.
local function new_http_get(pool)
  return function(url, timeout)
    local credentials = require("tencentcloud.iotexplorer.credentials")
    if not THREADABLE[phase()] then
      return credentials.http_get(url, timeout)
    end
    local ok, status, body = ngx.run_worker_thread(pool, "tencentcloud.iotexplorer.credentials", "http_get",
      url, timeout)
    if not ok then
      return nil, thread_failure(pool, status).message
    end
    return status, body
  end
end

-- Per-worker jitter: reseeded whenever the pid changes (a client made in init_by_lua lives in every worker).
local function worker_seed()
  local pid = ngx.worker.pid()
  return pid, pid * 7919 + math.floor(ngx.now() * 1000) + math.floor(os.clock() * 1e6)
end

local warned_no_dict = false

-- Called by iot.new inside nginx with the (checked) options and the core session's options. o.nginx: nil,
-- true or a table { thread_pool = "iotexplorer", shared_dict = "iotexplorer", location = nil } (location: the
-- internal proxy location of ngx_http.lua). Returns
-- { transport, close, sleep, store, http_get, random } or nil, message, field.
function M.setup(o, client_session_opts)
  local n = o.nginx
  if n == nil or n == true then
    n = {}
  end
  if type(n) ~= "table" then
    return nil, "nginx must be true, false or a table { thread_pool = ..., shared_dict = ... }", "nginx"
  end
  for k, v in pairs(n) do
    if k ~= "thread_pool" and k ~= "shared_dict" and k ~= "location" then
      return nil, "unknown nginx option '" .. tostring(k) .. "'", "nginx." .. tostring(k)
    end
    if type(v) ~= "string" or v == "" then
      return nil, "nginx." .. k .. " must be a non-empty string", "nginx." .. k
    end
  end
  local pool = n.thread_pool or M.DEFAULT_THREAD_POOL

  local store
  if o.rate_limit ~= false and o.rate_limit_store == nil then
    local name = n.shared_dict or M.DEFAULT_SHARED_DICT
    local err
    store, err = M.shared_store(name)
    if not store then
      if n.shared_dict then
        return nil, err, "nginx.shared_dict"
      end
      if not warned_no_dict then
        warned_no_dict = true
        ngx.log(ngx.WARN, "tencentcloud.iotexplorer: ", err, "; the rate limit applies to each worker ",
          "separately (add `lua_shared_dict ", name, " 1m;` to share one limit across workers)")
      end
    end
  end

  local session_opts = {}
  for k, v in pairs(client_session_opts) do
    session_opts[k] = v
  end
  session_opts.interruptible = false   -- nginx owns its signals
  local transport, close = new_transport(pool, session_opts, n.location)
  return {
    transport = transport,
    close = close,
    sleep = M.sleep,
    store = store,
    http_get = new_http_get(pool),
    random = retry.new_random(worker_seed),
  }
end

return M

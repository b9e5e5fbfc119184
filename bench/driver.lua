-- One measurement of `make bench`, run in a process of its own under lua5.4 or luajit from the repository root:
--
--   <lua> bench/driver.lua MODE SECONDS [URL] [ARGS...]
--
-- The timed modes (all but memory and ratelimit) take an optional COUNT after URL: then exactly COUNT
-- operations, SECONDS ignored, with no warm-up of their own; the same work whatever the machine's speed, for
-- counting instructions (bench/profile.lua).
-- Prints "RESULT <operations per wall second> <CPU microseconds per operation> <operations>" (CPU is the
-- process's own user + system time from os.clock, never wall time), or for `memory` and `ratelimit` a line
-- of their own. Not a spec: busted never loads it.
local lua_dir = jit and "luajit" or "lua5.4"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/" .. lua_dir .. "/?.so;" .. package.cpath

local core = require("tencentcloud.iotexplorer.core")
local cjson = require("cjson")

local mode, seconds, url = arg[1], tonumber(arg[2] or "0.3"), arg[3]

-- The request every driver signs or sends (the C baselines use the same bytes, see sign_common.h).
local SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
local SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local HOST = "iotexplorer.tencentcloudapi.com"
local PAYLOAD = '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9"}'
local TIMESTAMP = 1551113065
local COLD_KEYS = 64
local PARAMS = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local MANY_BATCH, MANY_CONCURRENCY = 64, 8

-- Published vector (NOTES.md): every signer is checked against it before it is timed.
local VEC = {
  service = "cvm", host = "cvm.tencentcloudapi.com", content_type = "application/json; charset=utf-8",
  payload = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
  signature = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
}

local function report(ops, wall, cpu)
  print(string.format("RESULT %.1f %.3f %d", ops / wall, cpu * 1e6 / ops, ops))
end

-- Runs step() in batches until `seconds` of wall time have passed (after a short warm-up). items: how many
-- operations one step() makes (a call_many batch makes many calls).
local function time_loop(step, batch, items)
  batch, items = batch or 1, items or 1
  local count = tonumber(arg[4])
  if count then
    local wall0, cpu0 = core.now(), os.clock()
    for _ = 1, count do
      step()
    end
    report(count * items, core.now() - wall0, os.clock() - cpu0)
    return
  end
  local warm_until = core.now() + math.min(0.05, seconds / 4)
  while core.now() < warm_until do
    step()
  end
  local ops, wall0, cpu0 = 0, core.now(), os.clock()
  local wall
  repeat
    for _ = 1, batch do
      step()
    end
    ops = ops + batch * items
    wall = core.now() - wall0
  until wall >= seconds
  report(ops, wall, os.clock() - cpu0)
end

-- ---------------------------------------------------------------------------
-- What a user would hand-roll: the TC3 signature with lua-luaossl, key derived every call.

local function handrolled_signer()
  local digest = require("openssl.digest")
  local hmac = require("openssl.hmac")
  local function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
  end
  local function sha256_hex(s)
    return hex(digest.new("sha256"):final(s))
  end
  local function hmac_sha256(key, msg)
    return hmac.new(key, "sha256"):final(msg)
  end
  -- Returns the request headers (a map), as core.sign does.
  return function(o)
    local date = os.date("!%Y-%m-%d", o.timestamp)
    local canonical = "POST\n/\n\ncontent-type:" .. o.content_type .. "\nhost:" .. o.host
      .. "\n\ncontent-type;host\n" .. sha256_hex(o.payload)
    local scope = date .. "/" .. o.service .. "/tc3_request"
    local to_sign = "TC3-HMAC-SHA256\n" .. o.timestamp .. "\n" .. scope .. "\n" .. sha256_hex(canonical)
    local k_date = hmac_sha256("TC3" .. o.secret_key, date)
    local k_signing = hmac_sha256(hmac_sha256(k_date, o.service), "tc3_request")
    local signature = hex(hmac_sha256(k_signing, to_sign))
    return {
      Authorization = "TC3-HMAC-SHA256 Credential=" .. o.secret_id .. "/" .. scope
        .. ", SignedHeaders=content-type;host, Signature=" .. signature,
      ["Content-Type"] = o.content_type,
      Host = o.host,
      ["X-TC-Action"] = o.action,
      ["X-TC-Version"] = o.version,
      ["X-TC-Timestamp"] = tostring(o.timestamp),
      ["X-TC-Region"] = o.region,
    }, signature
  end
end

local function sign_request(service, host, content_type, payload)
  return {
    secret_id = SECRET_ID, secret_key = SECRET_KEY, region = "ap-guangzhou", service = service, host = host,
    action = "DescribeBatchProduction", version = "2019-04-23", content_type = content_type, payload = payload,
    timestamp = TIMESTAMP,
  }
end

local function cold_keys()
  local keys = {}
  for i = 0, COLD_KEYS - 1 do
    keys[i] = SECRET_KEY .. string.format("%02d", i)
  end
  return keys
end

local modes = {}

-- core.sign, the same request each time within one day: the signing key stays cached.
function modes.sign_core_warm()
  local vec = sign_request(VEC.service, VEC.host, VEC.content_type, VEC.payload)
  local _, parts = assert(core.sign(vec))
  assert(parts.signature == VEC.signature, "core.sign disagrees with the published vector")
  local req = sign_request("iotexplorer", HOST, "application/json", PAYLOAD)
  local i = 0
  time_loop(function()
    i = i + 1
    req.timestamp = TIMESTAMP + i % 1024
    core.sign(req)
  end, 256)
end

-- core.sign with a different key and date every call: the cache never hits.
function modes.sign_core_cold()
  local keys = cold_keys()
  local req = sign_request("iotexplorer", HOST, "application/json", PAYLOAD)
  local i = 0
  time_loop(function()
    i = i + 1
    local k = i % COLD_KEYS
    req.secret_key = keys[k]
    req.timestamp = TIMESTAMP + 86400 * k
    core.sign(req)
  end, 256)
end

function modes.sign_luaossl()
  local sign = handrolled_signer()
  local _, signature = sign(sign_request(VEC.service, VEC.host, VEC.content_type, VEC.payload))
  assert(signature == VEC.signature, "the hand-rolled signer disagrees with the published vector")
  local req = sign_request("iotexplorer", HOST, "application/json", PAYLOAD)
  local i = 0
  time_loop(function()
    i = i + 1
    req.timestamp = TIMESTAMP + i % 1024
    sign(req)
  end, 64)
end

-- ---------------------------------------------------------------------------
-- Calls against the fast local server (nginx).

local function new_client(o)
  local iot = require("tencentcloud.iotexplorer")
  o = o or {}
  o.secret_id = o.secret_id or SECRET_ID
  o.secret_key = o.secret_key or SECRET_KEY
  o.region = "ap-guangzhou"
  o.endpoint = url
  return assert(iot.new(o))
end

local function check(res, err)
  if type(res) ~= "table" or res.BatchCnt ~= 3 then
    error("unexpected answer: " .. tostring(err and (err.code or err) or res))
  end
end

function modes.call_client()
  local client = new_client{ rate_limit = false }
  check(client:describe_batch_production(PARAMS))
  time_loop(function()
    local res = client:describe_batch_production(PARAMS)
    if not res then check(client:describe_batch_production(PARAMS)) end
  end)
end

-- client:call_many over batches of MANY_BATCH items, MANY_CONCURRENCY in flight: CPU per call, every
-- answer checked.
function modes.call_many()
  local client = new_client{ rate_limit = false }
  local list = {}
  for i = 1, MANY_BATCH do
    list[i] = { ProductId = PARAMS.ProductId, BatchProductionId = PARAMS.BatchProductionId }
  end
  local opts = { concurrency = MANY_CONCURRENCY }
  time_loop(function()
    local results, errs = client:call_many("DescribeBatchProduction", list, opts)
    for i = 1, MANY_BATCH do
      check(results[i], errs[i])
    end
  end, 1, MANY_BATCH)
end

-- A new client, hence a new connection, for every call.
function modes.call_client_newconn()
  time_loop(function()
    local client = new_client{ rate_limit = false }
    local res, err = client:describe_batch_production(PARAMS)
    client:close()
    if not res then check(res, err) end
  end)
end

-- The C core alone: what the Lua layer adds is the difference to call_client.
function modes.call_core()
  local host, port = url:match("^http://([^:/]+):?(%d*)")
  local session = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port),
    region = "ap-guangzhou" })
  local req = {
    secret_id = SECRET_ID, secret_key = SECRET_KEY, action = "DescribeBatchProduction", version = "2019-04-23",
    params = { ProductId = PARAMS.ProductId, BatchProductionId = PARAMS.BatchProductionId },
  }
  check(core.call(session, req))
  time_loop(function()
    req.timestamp = os.time()
    local res, err = core.call(session, req)
    if not res then check(res, err) end
  end)
end

-- What a user would write from Debian's packages: luaossl signing, cjson, and on LuaJIT lua-curl (module
-- `curl`, one easy handle kept, so keep-alive), on Lua 5.4 socket.http (a new connection per request:
-- it has no keep-alive).
function modes.call_handrolled()
  local sign = handrolled_signer()
  local host = url:match("^https?://([^/]+)")
  local post
  if jit then
    local curl = require("curl")
    local handle = curl.easy_init()
    local chunks, n = {}, 0
    handle:setopt(curl.OPT_URL, url .. "/")
    handle:setopt(curl.OPT_NOSIGNAL, 1)
    handle:setopt(curl.OPT_WRITEFUNCTION, function(data, len)
      n = n + 1
      chunks[n] = data
      return len
    end)
    post = function(headers, body)
      local list = {}
      for k, v in pairs(headers) do
        list[#list + 1] = k .. ": " .. v
      end
      chunks, n = {}, 0
      handle:setopt(curl.OPT_HTTPHEADER, list)
      handle:setopt(curl.OPT_POSTFIELDS, body)
      local ok, err = handle:perform()
      if ok ~= 0 then error("curl: " .. tostring(err)) end
      return table.concat(chunks, "", 1, n)
    end
  else
    local http = require("socket.http")
    local ltn12 = require("ltn12")
    post = function(headers, body)
      headers["Content-Length"] = tostring(#body)
      local out = {}
      local ok, status = http.request{
        url = url .. "/", method = "POST", headers = headers,
        source = ltn12.source.string(body), sink = ltn12.sink.table(out),
      }
      if not ok or status ~= 200 then error("socket.http: " .. tostring(status)) end
      return table.concat(out)
    end
  end
  local function call(params)
    local body = cjson.encode(params)
    local headers = sign{
      secret_id = SECRET_ID, secret_key = SECRET_KEY, region = "ap-guangzhou", service = "iotexplorer",
      host = host, action = "DescribeBatchProduction", version = "2019-04-23",
      content_type = "application/json", payload = body, timestamp = os.time(),
    }
    local doc = cjson.decode(post(headers, body))
    local res = doc.Response
    if res.Error then return nil, res.Error end
    return res
  end
  check(call(PARAMS))
  time_loop(function() call(PARAMS) end)
end

-- ---------------------------------------------------------------------------
-- Memory: VmRSS of this process after 10,000 and 100,000 calls through one client, and its peak (VmHWM).

local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+) kB"))
end

function modes.memory()
  local total, mark = tonumber(arg[4] or "100000"), tonumber(arg[5] or "10000")
  local client = new_client{ rate_limit = false }
  local rss_mark, heap_mark
  local cpu0, wall0 = os.clock(), core.now()
  for i = 1, total do
    local res, err = client:describe_batch_production(PARAMS)
    if not res then check(res, err) end
    if i == mark then
      rss_mark, heap_mark = status_kb("VmRSS"), collectgarbage("count")
    end
  end
  local wall, cpu = core.now() - wall0, os.clock() - cpu0
  print(string.format("MEMORY %d %d %d %d %.0f %.0f %.1f %.3f %d", total, mark, rss_mark, status_kb("VmRSS"),
    heap_mark, collectgarbage("count"), total / wall, cpu * 1e6 / total, status_kb("VmHWM")))
end

-- ---------------------------------------------------------------------------
-- Under the rate limit: the client's default rate_limit (20/s) against the emulator's 20/s per secret id.

function modes.ratelimit()
  local secret_id, secret_key, token = arg[4], arg[5], arg[6]
  local limited = 0          -- attempts answered RequestLimitExceeded, retried ones included
  local sends = {}           -- when each attempt left: the logger runs right after it returns
  local client = new_client{
    secret_id = secret_id, secret_key = secret_key, token = token,
    logger = function(record)
      sends[#sends + 1] = core.now() - record.duration
      if record.code and tostring(record.code):find("^RequestLimitExceeded") then limited = limited + 1 end
    end,
  }
  local calls, failed = 0, 0
  local stop = core.now() + seconds
  while core.now() < stop do
    if client:describe_batch_production(PARAMS) then calls = calls + 1 else failed = failed + 1 end
  end
  -- The achieved rate is that of sends: n - 1 intervals between the first and the last.
  local n = #sends
  local span = n > 1 and sends[n] - sends[1] or 0
  print(string.format("RATELIMIT %d %d %d %.3f %.3f %d", calls, failed, limited, n > 1 and (n - 1) / span or 0,
    span, n))
end

local run = modes[mode]
if not run then
  io.stderr:write("driver.lua: unknown mode ", tostring(mode), "\n")
  os.exit(2)
end
run()

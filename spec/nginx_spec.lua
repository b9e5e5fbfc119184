-- The client inside a real nginx (Debian's nginx + libnginx-mod-http-lua + lua-resty-core), against the
-- local emulator. nginx itself always runs LuaJIT, so its part runs once, in the `busted --lua=luajit`
-- pass (build/luajit is the core nginx loads); the shared-dict store's own specs run in both passes.
local ngx_support = require("tencentcloud.iotexplorer.ngx")

-- A stand-in for ngx.shared.DICT: get, set, add with the same results (expiry by a fake clock).
local function fake_dict(clock)
  local data, expires = {}, {}
  local function live(k)
    if expires[k] and expires[k] <= clock() then
      data[k], expires[k] = nil, nil
    end
    return data[k] ~= nil
  end
  return {
    get = function(_, k) if live(k) then return data[k] end end,
    set = function(_, k, v, ttl)
      data[k] = v
      expires[k] = ttl and ttl > 0 and clock() + ttl or nil
      return true
    end,
    add = function(_, k, v, ttl)
      if live(k) then return false, "exists" end
      data[k] = v
      expires[k] = ttl and ttl > 0 and clock() + ttl or nil
      return true
    end,
    count = function()
      local n = 0
      for k in pairs(data) do if live(k) then n = n + 1 end end
      return n
    end,
  }
end

describe("ngx.shared.DICT rate-limit store", function()
  local interval = 1 / (20 * 0.96)

  it("spaces reservations evenly, whoever makes them", function()
    local t = 1000
    local dict = fake_dict(function() return t end)
    -- Two "workers" with their own store objects over one dict, interleaved.
    local a, b = ngx_support.shared_store(dict), ngx_support.shared_store(dict)
    local sends = {}
    for i = 1, 60 do
      local store = (i % 2 == 0) and a or b
      local wait = assert(store:reserve("k", interval, t, math.huge))
      assert.is_true(wait >= 0)
      sends[#sends + 1] = t + wait
    end
    table.sort(sends)
    for i = 2, #sends do
      assert.is_true(sends[i] - sends[i - 1] >= interval - 1e-9, "two sends closer than the interval")
    end
    -- Never more than 20 in any one-second window.
    for i = 1, #sends do
      local n = 0
      for j = i, #sends do
        if sends[j] - sends[i] <= 1 then n = n + 1 end
      end
      assert.is_true(n <= 20, n .. " sends within one second")
    end
    -- At saturation, within 5% of the limit.
    assert.is_true((#sends - 1) / (sends[#sends] - sends[1]) >= 19)
  end)

  it("sends at once when idle, and keys and rates are separate budgets", function()
    local t = 500
    local dict = fake_dict(function() return t end)
    local s = ngx_support.shared_store(dict)
    assert.is_true(assert(s:reserve("k", interval, t, math.huge)) < interval)
    assert.is_true(assert(s:reserve("k", interval, t, math.huge)) > 0)
    assert.is_true(assert(s:reserve("other", interval, t, math.huge)) < interval)
    t = t + 10
    assert.is_true(assert(s:reserve("k", interval, t, math.huge)) < interval)
  end)

  it("reserves nothing when the wait would exceed max_wait, and forgets old slots", function()
    local t = 2000
    local dict = fake_dict(function() return t end)
    local s = ngx_support.shared_store(dict)
    for _ = 1, 10 do assert(s:reserve("k", interval, t, math.huge)) end
    local before = dict.count()
    local wait, needed = s:reserve("k", interval, t, 0.1)
    assert.is_nil(wait)
    assert.is_true(needed > 0.1)
    assert.equal(before, dict.count())
    t = t + 5
    assert(s:reserve("k", interval, t, math.huge))
    assert.is_true(dict.count() <= 2)
  end)

  it("names a missing lua_shared_dict", function()
    local store, err = ngx_support.shared_store("no_such_dict")
    assert.is_nil(store)
    assert.matches("no_such_dict", err)
  end)

  it("is not active outside nginx", function()
    assert.is_false(ngx_support.active())
  end)
end)

if type(jit) ~= "table" then
  describe("inside nginx", function()
    pending("runs in the LuaJIT pass (nginx's Lua is LuaJIT)")
  end)
  return
end

local emulator = require("helpers.emulator")
local nginx = require("helpers.nginx")
local util = require("helpers.util")
local iot = require("tencentcloud.iotexplorer")
local cjson = require("cjson.safe")

local PRODUCT, BATCH = "R32ONVL0EU", "LC-ya6zinv9"
local DESCRIBE = "/describe?product=" .. PRODUCT .. "&batch=" .. BATCH

local wait_for = util.wait_for

local function decode(body)
  local doc = cjson.decode(body or "")
  assert(type(doc) == "table", "not JSON: " .. tostring(body))
  return doc
end

-- Messages with their numbers blanked (curl's "after 0 ms", request ids), for comparing two runs.
local function shape(s)
  return (tostring(s):gsub("%x+%-%x+%-%x+%-%x+%-%x+", "ID"):gsub("%d+", "N"))
end

describe("inside nginx", function()
  local emu, ng, plain
  local dead_url = "http://127.0.0.1:" .. util.dead_port()

  local function start_nginx(workers)
    emu:reset()
    ng = nginx.start{ workers = workers, vars = {
      EMULATOR = emu.url, SECRET_ID = emu.secret_id, SECRET_KEY = emu.secret_key, DEAD = dead_url,
    } }
    -- Each worker calls the API once from init_worker_by_lua (the blocking fallback): let those land
    -- before counting anything.
    wait_for("init_worker calls", function()
      return (emu:counters().by_action.DescribeBatchProduction or 0) >= workers
    end)
    emu:reset()
  end

  local function stop_nginx()
    if ng then
      local serious = ng:serious_errors()
      ng:stop()
      ng = nil
      assert.same({}, serious)
    end
  end

  setup(function()
    emu = emulator.start{}
    plain = {
      client = assert(iot.new{ secret_id = emu.secret_id, secret_key = emu.secret_key, region = "ap-guangzhou",
        endpoint = emu.url, backoff_base = 0.05, timeout = 10 }),
      dead = assert(iot.new{ secret_id = emu.secret_id, secret_key = emu.secret_key, region = "ap-guangzhou",
        endpoint = dead_url, backoff_base = 0.01, connect_timeout = 1 }),
    }
  end)

  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)

  describe("with one worker", function()
    setup(function() start_nginx(1) end)
    teardown(stop_nginx)
    before_each(function() emu:reset() end)

    it("a client made with the documented nginx = { thread_pool, shared_dict } form works", function()
      local status, _, body = ng:get("/documented?product=" .. PRODUCT .. "&batch=" .. BATCH)
      assert.equal(200, status, body)
      local doc = decode(body)
      assert.is_true(doc.ok, body)
      assert.equal(3, doc.res.BatchCnt)
    end)

    it("a handler returns the emulator's data as JSON", function()
      local status, _, body = ng:get(DESCRIBE)
      assert.equal(200, status, body)
      local doc = decode(body)
      assert.is_true(doc.ok, body)
      local expected = assert(plain.client:describe_batch_production{ ProductId = PRODUCT, BatchProductionId = BATCH })
      for _, k in ipairs({ "BatchCnt", "BurnMethod", "CreateTime", "GenerationMethod", "Status", "SuccessCount",
                           "UploadUrl", "LastFailedReason" }) do
        assert.equal(expected[k], doc.res[k], k)
      end
      assert.equal(3, doc.res.BatchCnt)
      assert.equal(1572233486, doc.res.CreateTime)
      assert.matches("^http://127%.0%.0%.1:%d+/_download/R32ONVL0EU_LC%-ya6zinv9%.csv%?", doc.res.DownloadUrl)
      assert.is_string(doc.res.RequestId)

      status, _, body = ng:get("/list?project=PROJECT0001")
      assert.equal(200, status, body)
      doc = decode(body)
      assert.is_true(doc.ok, body)
      assert.equal(BATCH, doc.res.BatchProductions[1].BatchProductionId)
    end)

    it("answers other requests while a call waits on a slow server (the worker is not blocked)", function()
      emu:fault{ kind = "delay", seconds = 1, action = "DescribeBatchProduction" }
      local slow = ng:send(DESCRIBE)
      -- The emulator has the slow request (and holds its answer for 1 s): it is in flight.
      wait_for("the slow request to reach the emulator", function() return emu:counters().requests >= 1 end)
      local fast = ng:send("/fast")
      local fast_lua = ng:send("/fast_lua")
      local other_call = ng:send("/list?project=PROJECT0001")
      local order, unanswered = ng:collect({ slow, fast, fast_lua, other_call }, 30)
      assert.equal(0, unanswered)
      local paths = {}
      for i, h in ipairs(order) do paths[i] = h.path end
      assert.equal(slow, order[4], "answered in this order: " .. table.concat(paths, ", "))
      for _, h in ipairs(order) do assert.equal(200, h.status, h.body) end
      assert.is_true(decode(other_call.body).ok, other_call.body)
      local doc = decode(slow.body)
      assert.is_true(doc.ok, slow.body)
      assert.equal(3, doc.res.BatchCnt)
    end)

    it("downloads the device file without blocking the worker", function()
      emu:fault{ kind = "delay", seconds = 1, action = "_download" }
      local slow = ng:send("/download")
      wait_for("the download to reach the emulator", function() return emu:counters().downloads >= 1 end)
      local fast = ng:send("/fast_lua")
      local order, unanswered = ng:collect({ slow, fast }, 30)
      assert.equal(0, unanswered)
      assert.equal(fast, order[1])
      local doc = decode(slow.body)
      assert.is_true(doc.ok, slow.body)
      assert.equal(1 + 3, doc.res.lines)          -- the header line and one per device
      assert.is_true(doc.res.bytes > 0)
    end)

    it("surfaces errors as the same error objects as in plain Lua", function()
      -- prepare() runs before each of the two calls (nginx's, then plain Lua's).
      local function compare(path, plain_client, call, prepare)
        if prepare then prepare() end
        local _, _, body = ng:get(path)
        local doc = decode(body)
        assert.is_false(doc.ok, body)
        assert.is_true(doc.is_error)
        if prepare then prepare() end
        local _, expected = call(plain_client)
        assert.is_true(iot.is_error(expected))
        local got = doc.err
        for _, k in ipairs({ "code", "retryable", "attempts", "sent", "http_status", "field", "curl_code" }) do
          assert.equal(expected[k], got[k], path .. ": " .. k)
        end
        assert.equal(shape(expected.message), shape(got.message), path)
        assert.equal(shape(tostring(expected)), shape(doc.text), path)
        assert.equal(expected.request_id ~= nil, got.request_id ~= nil, path .. ": request_id")
        return got
      end

      local got = compare("/describe?product=" .. PRODUCT .. "&batch=LC-nope", plain.client, function(c)
        return c:describe_batch_production{ ProductId = PRODUCT, BatchProductionId = "LC-nope" }
      end)
      assert.equal("ResourceNotFound.BatchProductionNotExist", got.code)
      assert.matches("^ResourceNotFound%.BatchProductionNotExist: .*%(RequestId: ", decode(select(3,
        ng:get("/describe?product=" .. PRODUCT .. "&batch=LC-nope"))).text)

      got = compare("/bad", plain.client, function(c) return c:describe_batch_production{ ProductId = PRODUCT } end)
      assert.equal("ClientError.InvalidParameter", got.code)
      assert.equal("BatchProductionId", got.field)

      -- Retried, then given up: three attempts, as outside nginx.
      local requests_before = emu:counters().requests
      got = compare(DESCRIBE, plain.client, function(c)
        return c:describe_batch_production{ ProductId = PRODUCT, BatchProductionId = BATCH }
      end, function() emu:fault{ kind = "status", status = 503, count = 3 } end)
      assert.equal(3, got.attempts)
      assert.equal(503, got.http_status)
      assert.equal(6, emu:counters().requests - requests_before)

      got = compare("/dead", plain.dead, function(c)
        return c:describe_batch_production{ ProductId = PRODUCT, BatchProductionId = BATCH }
      end)
      assert.equal("ClientError.NetworkError", got.code)
      assert.equal(3, got.attempts)
    end)

    it("works from a timer, and from init_worker_by_lua where nginx cannot yield", function()
      local _, _, body = ng:get("/timer")
      assert.matches("^ok %x+", body)
      _, _, body = ng:get("/init_worker")
      assert.matches("^ok %x+", body)
    end)
  end)

  describe("with two workers", function()
    setup(function() start_nginx(2) end)
    teardown(stop_nginx)

    it("keeps 200 concurrent requests under 20/s in every second, without RequestLimitExceeded", function()
      local handles = {}
      for i = 1, 200 do handles[i] = ng:send(DESCRIBE) end
      local order, unanswered = ng:collect(handles, 60)
      assert.equal(0, unanswered)
      local pids, failures = {}, {}
      for _, h in ipairs(order) do
        local doc = cjson.decode(h.body or "")
        if h.status ~= 200 or type(doc) ~= "table" or not doc.ok then
          failures[#failures + 1] = tostring(h.body)
        else
          pids[doc.pid] = true
        end
      end
      assert.equal(0, #failures, #failures .. " failed, e.g.:\n" .. table.concat(failures, "\n", 1,
        math.min(3, #failures)))
      local c = emu:counters()
      assert.equal(200, c.requests, cjson.encode(c))
      assert.equal(0, c.rate_limited)
      assert.is_nil((c.errors or {}).RequestLimitExceeded)
      assert.is_true(c.max_per_second <= 20, "max_per_second " .. c.max_per_second)
      -- Connections are kept alive across calls (one session per thread VM, 2 x 16 threads at most),
      -- not opened per request.
      assert.is_true(c.connections < 50, c.connections .. " connections for 200 requests")
      local n = 0
      for _ in pairs(pids) do n = n + 1 end
      assert.is_true(n >= 2, "every request was served by one worker")
    end)
  end)
end)

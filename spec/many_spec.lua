-- client:call_many against the local emulator: order, per-item outcomes, the deadline, concurrency and
-- connections (as the emulator counted them), writes never resent, stopping from on_result. The nginx part
-- runs in the LuaJIT pass (nginx's Lua is LuaJIT).
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local PRODUCT, PROJECT = "R32ONVL0EU", "PROJECT0001"

local function describe_list(n, batch)
  local list = {}
  for i = 1, n do
    list[i] = { ProductId = PRODUCT, BatchProductionId = batch and batch(i) or "LC-ya6zinv9" }
  end
  return list
end

-- Exactly one of results[i] and errs[i] for every item.
local function assert_one_each(list, results, errs)
  assert.equal(#list, results.n)
  assert.equal(#list, errs.n)
  for i = 1, #list do
    assert.is_true((results[i] ~= nil) ~= (errs[i] ~= nil), "item " .. i .. " has both or neither")
  end
end

local function count(t, n)
  local k = 0
  for i = 1, n do
    if t[i] ~= nil then k = k + 1 end
  end
  return k
end

describe("client:call_many", function()
  local emu

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  local clients = {}
  local function new_client(o)
    o = o or {}
    o.region = o.region or "ap-guangzhou"
    o.endpoint = emu.url
    o.secret_id, o.secret_key = emu.secret_id, emu.secret_key
    o.backoff_base = o.backoff_base or 0.01
    local c = assert(iot.new(o))
    clients[#clients + 1] = c
    return c
  end

  before_each(function()
    -- A request a deadline gave up on is still being answered: let it finish before counting afresh.
    util.wait_for("the emulator to answer everything", function() return emu:counters().in_flight == 0 end)
    emu:reset()
    emu:set{ delay_ms = 0 }
  end)

  after_each(function()
    for _, c in ipairs(clients) do c:close() end
    clients = {}
  end)

  it("refuses a closed client, a list that is not a sequence and bad options, sending nothing", function()
    local c = new_client()
    local list = describe_list(2)
    local bad = {
      { "DescribeBatchProduction", { list[1], nil, list[2] }, nil, "list" },
      { "DescribeBatchProduction", { a = list[1] }, nil, "list" },
      { "DescribeBatchProduction", "not a list", nil, "list" },
      { 42, list, nil, "action" },
      { "DescribeBatchProduction", list, "fast", "opts" },
      { "DescribeBatchProduction", list, { concurrency = 0 }, "concurrency" },
      { "DescribeBatchProduction", list, { concurrency = 65 }, "concurrency" },
      { "DescribeBatchProduction", list, { concurrency = 2.5 }, "concurrency" },
      { "DescribeBatchProduction", list, { deadline = -1 }, "deadline" },
      { "DescribeBatchProduction", list, { timeout = 0 }, "timeout" },
      { "DescribeBatchProduction", list, { on_result = "print" }, "on_result" },
      { "DescribeBatchProduction", list, { concurency = 4 }, "concurency" },
    }
    for _, case in ipairs(bad) do
      local results, err = c:call_many(case[1], case[2], case[3])
      assert.is_nil(results)
      assert.is_true(iot.is_error(err))
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal(case[4], err.field)
    end
    local _, err = c:call_many("DescribeBatchProduction", list, { concurency = 4 })
    assert.matches("did you mean concurrency", err.message)
    c:close()
    local results, cerr = c:describe_batch_productions(list)
    assert.is_nil(results)
    assert.equal("ClientError.ClientClosed", cerr.code)
    assert.is_false(cerr.sent)
    assert.equal(0, emu:counters().requests)
  end)

  it("returns empty arrays for an empty list", function()
    local results, errs = new_client():call_many("DescribeBatchProduction", {})
    assert.same({ n = 0 }, results)
    assert.same({ n = 0 }, errs)
  end)

  it("keeps the input order while the items finish out of order", function()
    local n = 6
    local seeds = {}
    for i = 1, n do
      seeds[i] = { ProductId = PRODUCT, BatchProductionId = "LC-order" .. i, BatchCnt = i * 10 }
    end
    emu:seed(seeds)
    -- The first request to arrive is item 1's (it takes the limiter's first slot): it answers last.
    emu:fault{ kind = "delay", seconds = 0.8 }
    local finished = {}
    local list = describe_list(n, function(i) return "LC-order" .. i end)
    local results, errs = new_client():describe_batch_productions(list, {
      concurrency = n, on_result = function(i) finished[#finished + 1] = i end })
    assert_one_each(list, results, errs)
    for i = 1, n do
      assert.equal(i * 10, results[i].BatchCnt)
    end
    assert.equal(n, #finished)
    assert.equal(1, finished[n], "item 1 was delayed, so it finished last")
  end)

  it("reports one unknown batch and repairs one 503 without touching the others", function()
    local n = 8
    emu:fault{ kind = "status", status = 503 }
    local list = describe_list(n, function(i) return i == 5 and "LC-missing0" or "LC-ya6zinv9" end)
    local attempts = 0
    local c = new_client{ logger = function() attempts = attempts + 1 end }
    local results, errs = c:describe_batch_productions(list, { concurrency = 4 })
    assert_one_each(list, results, errs)
    for i = 1, n do
      if i == 5 then
        assert.equal("ResourceNotFound.BatchProductionNotExist", errs[5].code)
        assert.equal(1, errs[5].attempts)
        assert.is_string(errs[5].request_id)
      else
        assert.equal(3, results[i].BatchCnt)
      end
    end
    local counted = emu:counters()
    assert.equal(1, counted.faults_applied)
    assert.equal(n + 1, counted.requests, "one retry, for the 503")
    assert.equal(n + 1, attempts, "every attempt logged")
  end)

  it("checks each item as a single call does and never sends a bad one", function()
    local list = {
      { ProductId = PRODUCT, BatchProductionId = "LC-ya6zinv9" },
      { ProductId = PRODUCT },
      "not a table",
      { ProductId = PRODUCT, BatchProductionId = "LC-ya6zinv9", Extra = 1 },
      { ProductId = PRODUCT, BatchProductionId = "LC-ya6zinv9" },
    }
    local calls = 0
    local results, errs = new_client():call_many("DescribeBatchProduction", list, {
      on_result = function() calls = calls + 1 end })
    assert_one_each(list, results, errs)
    assert.equal("BatchProductionId", errs[2].field)
    assert.equal("params", errs[3].field)
    assert.equal("Extra", errs[4].field)
    for _, i in ipairs({ 2, 3, 4 }) do
      assert.equal("ClientError.InvalidParameter", errs[i].code)
      assert.is_false(errs[i].sent)
    end
    assert.equal(5, calls)
    assert.equal(2, emu:counters().requests)
  end)

  it("runs other actions by name", function()
    local list = { { ProjectId = PROJECT, Limit = 5 }, { ProjectId = "PROJECT-none" } }
    local results, errs = new_client():call_many("GetBatchProductionsList", list)
    assert_one_each(list, results, errs)
    assert.is_number(results[1].TotalCnt)
    assert.equal("ResourceNotFound.ProjectNotExist", errs[2].code)
  end)

  it("gives the items the deadline leaves unstarted a Timeout with sent = false", function()
    emu:set{ delay_ms = 300 }
    local n = 12
    local list = describe_list(n)
    local calls = 0
    local started = core.now()
    local results, errs = new_client():describe_batch_productions(list, {
      concurrency = 2, deadline = 1, on_result = function() calls = calls + 1 end })
    local elapsed = core.now() - started
    assert_one_each(list, results, errs)
    assert.equal(n, calls)
    local done, unstarted = count(results, n), 0
    for i = 1, n do
      local e = errs[i]
      if e then
        assert.equal("ClientError.Timeout", e.code)
        if e.sent == false then unstarted = unstarted + 1 end
      end
    end
    assert.is_true(done >= 2, done .. " items finished")
    assert.is_true(unstarted >= 4, unstarted .. " items never started")
    assert.is_true(elapsed < 2.5, "the batch ran " .. elapsed .. " s past a 1 s deadline")
    assert.is_true(emu:counters().requests <= n - unstarted)
  end)

  it("keeps at most `concurrency` requests in flight, on at most that many connections, reused", function()
    emu:set{ delay_ms = 200 }
    local c = new_client()
    local list = describe_list(24)
    local before = emu:counters().connections
    local results, errs = c:describe_batch_productions(list, { concurrency = 3 })
    assert_one_each(list, results, errs)
    assert.equal(24, count(results, 24))
    local counted = emu:counters()
    assert.is_true(counted.max_in_flight <= 3, counted.max_in_flight .. " in flight")
    assert.is_true(counted.max_in_flight >= 2, "only " .. counted.max_in_flight .. " in flight")
    -- Each counters() request comes on a connection of its own.
    local api_connections = counted.connections - before - 1
    assert.is_true(api_connections <= 3, api_connections .. " connections")
    -- The next batch reuses them.
    results = c:describe_batch_productions(list, { concurrency = 3 })
    assert.equal(24, count(results, 24))
    local again = emu:counters()
    assert.equal(counted.connections + 1, again.connections)
    assert.equal(0, again.rate_limited)
  end)

  it("never sends a write twice when the connection resets after the request was sent", function()
    local n = 4
    local list = {}
    for i = 1, n do
      list[i] = { ProjectId = PROJECT, ProductId = PRODUCT, BurnMethod = 0, GenerationMethod = 0, BatchCnt = i }
    end
    emu:fault{ kind = "reset", when = "before" }
    emu:fault{ kind = "reset", when = "headers" }
    local results, errs = new_client():call_many("CreateBatchProduction", list, { concurrency = n })
    assert_one_each(list, results, errs)
    local failed = 0
    for i = 1, n do
      if errs[i] then
        failed = failed + 1
        assert.equal("ClientError.NetworkError", errs[i].code)
        assert.is_true(errs[i].sent)
        assert.equal(1, errs[i].attempts)
        assert.is_false(errs[i].retryable)
      else
        assert.matches("^LC%-", results[i].BatchProductionId)
      end
    end
    assert.equal(2, failed)
    assert.equal(n, emu:counters().by_action.CreateBatchProduction, "each write reached the service once")
  end)

  it("stops when on_result closes the client: nothing is started or resent after", function()
    emu:set{ delay_ms = 200 }
    local c = new_client()
    local n = 20
    local list = describe_list(n)
    local calls = 0
    local results, errs = c:describe_batch_productions(list, { concurrency = 4, on_result = function()
      calls = calls + 1
      c:close()
    end })
    assert_one_each(list, results, errs)
    assert.equal(1, calls)
    assert.equal(1, count(results, n))
    local unstarted = 0
    for i = 1, n do
      local e = errs[i]
      if e then
        assert.equal("ClientError.ClientClosed", e.code)
        if e.sent == false then unstarted = unstarted + 1 end
      end
    end
    assert.is_true(unstarted >= n - 4)
    local sent = emu:counters().requests
    assert.is_true(sent <= 4, sent .. " requests")
    core.sleep(0.5)
    assert.equal(sent, emu:counters().requests)
    local again, err = c:describe_batch_productions(list)
    assert.is_nil(again)
    assert.equal("ClientError.ClientClosed", err.code)
  end)

  it("stops cleanly when on_result raises", function()
    emu:set{ delay_ms = 100 }
    local n = 12
    local list = describe_list(n)
    local results, errs = new_client():describe_batch_productions(list, { concurrency = 2, on_result = function(i)
      error("stop at item " .. i)
    end })
    assert_one_each(list, results, errs)
    assert.equal(1, count(results, n))
    local stopped = 0
    for i = 1, n do
      if errs[i] then
        assert.equal("ClientError.CallbackError", errs[i].code)
        assert.matches("stop at item", errs[i].message)
        stopped = stopped + 1
      end
    end
    assert.equal(n - 1, stopped)
    assert.is_true(emu:counters().requests <= 3)
  end)

  it("keeps the service's limit: no RequestLimitExceeded at concurrency 8", function()
    local n = 50
    local list = describe_list(n)
    local results, errs = new_client():describe_batch_productions(list)
    assert_one_each(list, results, errs)
    assert.equal(n, count(results, n))
    local counted = emu:counters()
    assert.equal(0, counted.rate_limited)
    assert.is_true(counted.max_per_second <= 20)
  end)

  it("scrubs the secret key from every error", function()
    local secret = emu.secret_key
    emu:fault{ kind = "error", code = "InternalError", message = "echo " .. secret, count = -1 }
    local list = describe_list(3)
    local _, errs = new_client{ max_attempts = 1 }:describe_batch_productions(list)
    for i = 1, 3 do
      assert.equal("InternalError", errs[i].code)
      assert.is_nil(tostring(errs[i]):find(secret, 1, true))
    end
  end)
end)

describe("call_many and signals", function()
  -- A child of the interpreter running the specs traps SIGINT (core.trap_signals) and runs a batch whose
  -- answers take 20 s; the signal must end it within a second or two, every item with Interrupted.
  local CHILD = [==[
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local url, id, key = arg[1], arg[2], arg[3]
local function say(...) io.stdout:write(table.concat({ ... }, " "), "\n") io.stdout:flush() end
assert(core.trap_signals(true))
local client = assert(iot.new{ region = "ap-guangzhou", endpoint = url, secret_id = id, secret_key = key })
say("pid", io.open("/proc/self/stat"):read("*l"):match("^(%d+)"))
local list = {}
for i = 1, 20 do list[i] = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } end
local results, errs = client:describe_batch_productions(list, { concurrency = 4 })
local interrupted, sent = 0, 0
for i = 1, 20 do
  if not results[i] and errs[i].code == "ClientError.Interrupted" then interrupted = interrupted + 1 end
  if errs[i] and errs[i].sent then sent = sent + 1 end
end
say("interrupted", interrupted, "sent", sent)
say("done")
]==]

  it("SIGINT stops a batch at once: what is in flight ends, nothing more is sent", function()
    local emu = emulator.start()
    local dir = util.tmpdir()
    local ok, why = pcall(function()
      emu:fault{ kind = "delay", seconds = 20, count = -1 }
      local script, out = dir .. "/child.lua", dir .. "/child.out"
      util.write_file(script, CHILD)
      util.check_output("cd " .. util.shell_quote(util.ROOT) .. " && (" .. util.lua_command(script,
        { emu.url, emu.secret_id, emu.secret_key }) .. " > " .. util.shell_quote(out)
        .. " 2>&1; echo \"exit=$?\" >> " .. util.shell_quote(out) .. ") > /dev/null 2>&1 &")
      local pid = util.wait_for("the child's pid", function() return (util.read_file(out) or ""):match("pid (%d+)") end)
      util.wait_for("four requests in flight", function() return emu:counters().requests >= 4 end)
      local started = core.now()
      util.check_output("kill -INT " .. pid)
      local text = util.wait_for("the child to end", function()
        local t = util.read_file(out) or ""
        return t:find("exit=%d+") and t
      end, 20)
      local took = core.now() - started
      assert.is_true(took < 2.5, "took " .. took .. " s")
      assert.truthy(text:find("interrupted 20 sent 4\n", 1, true), text)
      assert.truthy(text:find("done\nexit=0", 1, true), text)
      assert.equal(4, emu:counters().requests)
    end)
    emu:stop()
    util.rm_rf(dir)
    assert(ok, why)
  end)
end)

describe("core multi handle", function()
  it("is collected and closed without leaks, and close() can be repeated", function()
    local s = assert(core.new_session{ host = "127.0.0.1", port = 1, scheme = "http", region = "ap-guangzhou" })
    local m = assert(core.new_multi(s, { concurrency = 2 }))
    assert.matches("open, 0 of 2", tostring(m))
    m:close()
    m:close()
    assert.matches("closed", tostring(m))
    local _, err = m:add(1, { secret_id = "a", secret_key = "b", action = "X", version = "1" })
    assert.equal("ClientError.SessionClosed", err.code)
    assert.equal(0, select("#", m:wait(0.01)))
    assert.has_error(function() core.new_multi(s, { concurrency = 65 }) end)
    assert.has_error(function() core.new_multi(s, { concurency = 2 }) end)
    s:close()
    local none, serr = core.new_multi(s)
    assert.is_nil(none)
    assert.equal("ClientError.SessionClosed", serr.code)
  end)

  it("reports a refused connection per transfer, and abandons what is in flight", function()
    local s = assert(core.new_session{ host = "127.0.0.1", port = util.dead_port(), scheme = "http",
      region = "ap-guangzhou" })
    local m = assert(core.new_multi(s, { concurrency = 2 }))
    local req = { secret_id = "a", secret_key = "b", action = "DescribeBatchProduction", version = "2019-04-23" }
    assert(m:add(7, req))
    assert(m:add(8, req))
    assert.has_error(function() m:add(7, req) end)
    local _, busy = m:add(9, req)
    assert.equal("ClientError.SessionBusy", busy.code)
    assert.is_false(m:abandon(8))
    assert.is_nil(m:abandon(8))
    local got = {}
    for _ = 1, 50 do
      local ids, _, errs = m:wait(0.1)
      for k = 1, ids and #ids or 0 do got[ids[k]] = errs[k] end
      if got[7] then break end
    end
    assert.equal("ClientError.NetworkError", got[7].code)
    assert.is_false(got[7].sent)
    m:close()
    s:close()
  end)
end)

if type(jit) ~= "table" then
  describe("call_many inside nginx", function()
    pending("runs in the LuaJIT pass (nginx's Lua is LuaJIT)")
  end)
  return
end

describe("call_many inside nginx", function()
  local nginx = require("helpers.nginx")
  local cjson = require("cjson.safe")
  local emu, ng

  setup(function()
    emu = emulator.start()
    emu:set{ delay_ms = 200 }
    ng = nginx.start{ workers = 2, vars = {
      EMULATOR = emu.url, SECRET_ID = emu.secret_id, SECRET_KEY = emu.secret_key,
      DEAD = "http://127.0.0.1:" .. util.dead_port(),
    } }
  end)

  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)

  local function many(query)
    local status, _, body = ng:get("/many?" .. query, 60)
    assert.equal(200, status, tostring(body))
    local doc = cjson.decode(body)
    assert.is_true(doc.ok, body)
    return doc.res
  end

  it("runs the items in light threads, in order, at most `concurrency` at once", function()
    emu:reset()
    local res = many("n=24&concurrency=6&missing=7")
    for i = 1, 24 do
      assert.equal(i == 7 and "ResourceNotFound.BatchProductionNotExist" or "ok", res.codes[i])
    end
    assert.equal(24, #res.order)
    local counted = emu:counters()
    assert.is_true(counted.max_in_flight <= 6, counted.max_in_flight .. " in flight")
    assert.is_true(counted.max_in_flight >= 2, "only " .. counted.max_in_flight .. " in flight")
    -- 24 sequential calls would take 24 x 0.2 s.
    assert.is_true(res.seconds < 4, res.seconds .. " s")
  end)

  it("keeps both workers under the one shared 20/s limit", function()
    emu:reset()
    local handles = {}
    for k = 1, 4 do handles[k] = ng:send("/many?n=15&concurrency=8") end
    local done, left = ng:collect(handles, 60)
    assert.equal(0, left)
    for _, h in ipairs(done) do
      local doc = cjson.decode(h.body)
      assert.is_true(doc.ok, h.body)
      for i = 1, 15 do assert.equal("ok", doc.res.codes[i]) end
    end
    -- Each worker alone would send 19.2/s, so two without the shared store would reach ~38 in a second.
    -- The emulator stamps a request when it gets to it, not when it arrived: on a loaded machine one late
    -- stamp can put 21 into a sliding second, which the client then retries.
    local counted = emu:counters()
    assert.is_true(counted.max_per_second <= 21, cjson.encode(counted.max_per_second_by_action))
    assert.is_true(counted.rate_limited <= 2, counted.rate_limited .. " refused")
    assert.same({}, ng:serious_errors())
  end)
end)

-- Calls through nginx's own upstream (ngx_http.lua) in a real nginx, against the emulator and its TLS front
-- (the specs' CA). nginx runs LuaJIT, so this runs in the `busted --lua=luajit` pass.
if type(jit) ~= "table" then
  describe("ngx_http transport", function()
    pending("runs in the LuaJIT pass (nginx's Lua is LuaJIT)")
  end)
  return
end

local emulator = require("helpers.emulator")
local nginx = require("helpers.nginx")
local tls = require("helpers.tls")
local util = require("helpers.util")
local cjson = require("cjson.safe")

local PRODUCT, BATCH = "R32ONVL0EU", "LC-ya6zinv9"

local function decode(body)
  local doc = cjson.decode(body or "")
  assert(type(doc) == "table", "not JSON: " .. tostring(body))
  return doc
end

describe("ngx_http transport", function()
  local emu, front, ng

  local function get(path)
    local status, _, body = ng:get(path, 30)
    assert.equal(200, status, tostring(body))
    return decode(body)
  end

  local function count(action)
    return emu:counters().by_action[action] or 0
  end

  setup(function()
    emu = emulator.start{}
    front = tls.start{ upstream = emu.url }
    ng = nginx.start{ vars = {
      EMULATOR = emu.url, SECRET_ID = emu.secret_id, SECRET_KEY = emu.secret_key,
      DEAD = "http://127.0.0.1:" .. util.dead_port(), TLS_ADDR = "127.0.0.1:" .. front.ports.good,
      CA_FILE = front.ca_file,
    } }
    util.wait_for("init_worker call", function() return count("DescribeBatchProduction") >= 1 end)
  end)

  teardown(function()
    local serious = ng and ng:serious_errors() or {}
    if ng then ng:stop() end
    if front then front:stop() end
    if emu then emu:stop() end
    assert.same({}, serious)
  end)

  before_each(function() emu:reset() end)

  it("calls the API through the internal location; the emulator verifies the signature", function()
    local doc = get("/sub/describe?product=" .. PRODUCT .. "&batch=" .. BATCH)
    assert.is_true(doc.ok, cjson.encode(doc))
    assert.equal(3, doc.res.BatchCnt)
    local before = emu:counters()
    assert.equal(1, before.by_action.DescribeBatchProduction)
    for _ = 1, 5 do
      assert.is_true(get("/sub/describe?product=" .. PRODUCT .. "&batch=" .. BATCH).ok)
    end
    local c = emu:counters()
    assert.equal(6, c.by_action.DescribeBatchProduction)
    -- nginx keeps the upstream connection alive: the only new connection is that of counters() itself.
    assert.equal(before.connections + 1, c.connections)
  end)

  it("needs no thread pool in a content handler; a timer (no subrequests) still uses it", function()
    local doc = get("/sub/nopool")
    assert.is_true(doc.ok, cjson.encode(doc))
    local status, _, body = ng:get("/sub/nopool_timer", 30)
    assert.equal(200, status)
    assert.truthy(body:find("^ClientError.SessionError .*thread pool \"absent\""), body)
  end)

  it("returns the service's errors as the C transport does", function()
    local doc = get("/sub/describe?product=" .. PRODUCT .. "&batch=LC-nope")
    assert.is_false(doc.ok)
    assert.truthy(doc.err.code:find("^ResourceNotFound"), doc.err.code)
    assert.truthy(doc.err.request_id)
    assert.is_true(doc.err.sent)
  end)

  it("sends a write once (on a kept-alive connection) when no answer comes, and says it may have been applied",
    function()
    emu:fault{ kind = "reset", action = "CreateBatchProduction" }
    local doc = get("/sub/create")
    assert.is_false(doc.ok)
    assert.equal("ClientError.NetworkError", doc.err.code)
    assert.is_true(doc.err.sent)
    assert.is_true(doc.err.maybe_applied)
    assert.equal(1, count("CreateBatchProduction"))
  end)

  it("retries a read after a broken connection and succeeds", function()
    emu:fault{ kind = "reset", action = "DescribeBatchProduction" }
    local doc = get("/sub/describe?product=" .. PRODUCT .. "&batch=" .. BATCH)
    assert.is_true(doc.ok, cjson.encode(doc))
    assert.equal(2, count("DescribeBatchProduction"))
  end)

  it("reports a refused connection as a NetworkError that was not sent", function()
    local doc = get("/sub/dead")
    assert.is_false(doc.ok)
    assert.equal("ClientError.NetworkError", doc.err.code)
    assert.is_false(doc.err.sent)
  end)

  it("reports proxy_read_timeout as ClientError.Timeout, sent", function()
    emu:fault{ kind = "delay", seconds = 2.5, action = "GetBatchProductionsList" }
    local t0 = require("socket").gettime()
    local doc = get("/sub/slow")
    assert.is_false(doc.ok)
    assert.equal("ClientError.Timeout", doc.err.code)
    assert.is_true(doc.err.sent)
    assert.truthy(require("socket").gettime() - t0 < 2.4)
  end)

  it("refuses a response over max_response_bytes", function()
    local doc = get("/sub/small")
    assert.is_false(doc.ok)
    assert.equal("ClientError.ResponseTooLarge", doc.err.code)
    assert.is_true(doc.err.sent)
  end)

  it("reports a malformed answer as ParseJsonError", function()
    emu:fault{ kind = "malformed_json", action = "DescribeBatchProduction", count = 5 }
    local doc = get("/sub/describe?product=" .. PRODUCT .. "&batch=" .. BATCH)
    assert.is_false(doc.ok)
    assert.equal("ClientError.ParseJsonError", doc.err.code)
  end)

  it("verifies TLS against the configured CA and the API's host name", function()
    local doc = get("/sub/tls")
    assert.is_true(doc.ok, cjson.encode(doc))
    assert.equal(3, doc.res.BatchCnt)
  end)

  it("falls back to the thread pool in a timer, where subrequests cannot run", function()
    local status, _, body = ng:get("/sub/timer", 30)
    assert.equal(200, status)
    assert.truthy(body:find("^ok "), body)
  end)
end)

-- The bound signer (core.signer, and signer.lua's FFI entry on LuaJIT): its signatures equal core.sign's
-- and the emulator's verifier's for a matrix of inputs; closing wipes the key; misuse raises.
local core = require("tencentcloud.iotexplorer.core")
local signer = require("tencentcloud.iotexplorer.signer")
local verifier = require("tencentcloud.iotexplorer.emulator.tc3")

local ID, KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local HOST = "iotexplorer.tencentcloudapi.com"

local function options(over)
  local o = { secret_id = ID, secret_key = KEY, region = "ap-guangzhou", host = HOST }
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

-- core.sign's request table for one case of the matrix.
local function request(case, ts)
  local t = options(case.opts)
  t.action, t.version, t.timestamp, t.payload = case.action, "2019-04-23", ts, case.body
  return t
end

-- Checks what a server would: the emulator's verifier over the headers as sent.
local function verify(headers, body, secret_key)
  local lower = {}
  for k, v in pairs(headers) do lower[k:lower()] = v end
  local auth = assert(verifier.parse_authorization(headers.Authorization))
  return verifier.verify({ method = "POST", path = "/", query = "", headers = lower, body = body }, auth,
    secret_key, headers["X-TC-Timestamp"])
end

describe("core.signer", function()
  local matrix = {
    { name = "plain", opts = {}, action = "DescribeBatchProduction", body = '{"ProductId":"R32ONVL0EU"}' },
    { name = "token and language", opts = { token = "tok-123", language = "en-US" }, action = "DescribeDevice",
      body = "{}" },
    { name = "x-tc-action signed", opts = { signed_headers = "content-type;host;x-tc-action" },
      action = "GetBatchProductionsList", body = '{"ProjectId":"P"}' },
    { name = "another service, host and content type", opts = { service = "cvm", host = "cvm.tencentcloudapi.com",
      content_type = "application/json; charset=utf-8" }, action = "DescribeInstances", body = '{"Limit": 1}' },
    { name = "a long key, UTF-8 body, empty body", opts = { secret_key = string.rep("k", 100) },
      action = "CreateBatchProduction", body = "" },
    { name = "UTF-8 body", opts = { region = "ap-shanghai" }, action = "CreateBatchProduction",
      body = '{"Name":"未命名"}' },
  }
  local timestamps = { 0, 1551113065, 1551113065 + 86400, 253402300799 }

  for _, case in ipairs(matrix) do
    it("signs as core.sign and the emulator's verifier do: " .. case.name, function()
      local s = assert(signer.new(options(case.opts)))
      for _, ts in ipairs(timestamps) do
        local auth, headers = s:sign(case.action, "2019-04-23", ts, case.body, {})
        local want, want_parts = assert(core.sign(request(case, ts)))
        assert.same(want, headers)
        assert.equal(want.Authorization, auth)
        -- The plain entry (FFI on LuaJIT) gives the same value.
        assert.equal(auth, s:sign(case.action, "2019-04-23", ts, case.body))
        assert.is_true(verify(headers, case.body, case.opts.secret_key or KEY))
        local eh, parts = s:explain(case.action, "2019-04-23", ts, case.body)
        assert.same(headers, eh)
        assert.same(want_parts, parts)
      end
      s:close()
    end)
  end

  it("signs with the current time when no timestamp is given", function()
    local s = assert(signer.new(options()))
    local before = os.time()
    local _, headers = s:sign("DescribeDevice", "2019-04-23", nil, "{}", {})
    local ts = tonumber(headers["X-TC-Timestamp"])
    assert.is_true(ts >= before and ts <= os.time())
    assert.is_true(verify(headers, "{}", KEY))
  end)

  it("writes into the table it is given and returns it", function()
    local s = assert(signer.new(options{ token = "t" }))
    local into = { Stale = "x" }
    local _, headers = s:sign("DescribeDevice", "2019-04-23", 1551113065, "{}", into)
    assert.equal(into, headers)
    assert.equal("t", into["X-TC-Token"])
    assert.equal("DescribeDevice", into["X-TC-Action"])
  end)

  it("wipes the key on close; closing twice is fine; a closed signer raises", function()
    local s = assert(core.signer(options()))
    assert.truthy(tostring(s):find("open", 1, true))
    s:close()
    s:close()
    assert.truthy(tostring(s):find("closed", 1, true))
    assert.has_error(function() s:sign("A", "2019-04-23", 1, "{}") end, "the signer is closed")
    assert.has_error(function() s:explain("A", "2019-04-23", 1, "{}") end, "the signer is closed")
    local w = assert(signer.new(options()))
    w:close()
    w:close()
    assert.has_error(function() w:sign("A", "2019-04-23", 1, "{}") end)
  end)

  it("raises on bad fields, naming the field and never the key, like core.sign", function()
    local cases = {
      { {}, "secret_id" },
      { options{ secret_key = "" }, "secret_key" },
      { options{ region = "ap\r\nX: y" }, "region" },
      { options{ host = false }, "host" },
      { options{ signed_headers = "host" }, "signed_headers" },
      { options{ endpoint = "https://x/" }, "endpoint" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(core.signer, c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
      assert.is_nil(tostring(err):find(KEY, 1, true))
      ok, err = pcall(signer.new, c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end
  end)

  it("raises on misuse: wrong types, header injection, a timestamp out of range, not a signer", function()
    local s = assert(signer.new(options()))
    assert.has_error(function() core.signer("x") end)
    assert.has_error(function() s:sign(nil, "2019-04-23", 1, "{}") end)
    assert.has_error(function() s:sign("A", {}, 1, "{}") end)
    assert.has_error(function() s:sign("A", "2019-04-23", 1, nil) end)
    assert.has_error(function() s:sign("A\r\nX-Evil: 1", "2019-04-23", 1, "{}") end)
    assert.has_error(function() s:sign("", "2019-04-23", 1, "{}") end)
    assert.has_error(function() s:sign("A", "2019-04-23", -1, "{}") end)
    assert.has_error(function() s:sign("A", "2019-04-23", 1.5, "{}") end)
    assert.has_error(function() s:sign("A", "2019-04-23", "1", "{}") end)
    assert.has_error(function() s:sign("A", "2019-04-23", 1, "{}", "not a table") end)
    local raw = assert(core.signer(options()))
    local sign = getmetatable(raw) == "locked" and raw.sign
    assert.has_error(function() sign({}, "A", "2019-04-23", 1, "{}") end)
    assert.has_error(function() sign(io.stdout, "A", "2019-04-23", 1, "{}") end)
  end)

  it("uses the FFI entry on LuaJIT and the C API on Lua 5.4", function()
    assert.equal(type(rawget(_G, "jit")) == "table", signer.ffi)
  end)
end)

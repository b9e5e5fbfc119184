-- The request encoder (src/jsonenc.c: core.json_encode and the body of core.call) and the strict response
-- decoder. The wire cases post through core.call and the client to a loopback server that answers with the
-- exact body it received, so they hold for whatever encoder the core uses: each names what lua-cjson 2.1.0
-- got wrong. The property cases run the fuzz harness (spec/fuzz/fuzz_encode.lua) over random inputs.
local core = require("tencentcloud.iotexplorer.core")
local iot = require("tencentcloud.iotexplorer")
local check = require("tencentcloud.iotexplorer.check")
local cjson = require("cjson")
local util = require("helpers.util")

local HAS_INTEGERS = math.type ~= nil

-- One request per connection: the body comes back as Response.Body (action Echo), or the server answers
-- with the text in the request's Text field (action Reply). GET /_count: requests served; GET /_stop.
local SERVER = [[
local socket = require("socket")
local cjson = require("cjson")
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write("ECHO_READY ", port, "\n")
io.stdout:flush()
local served = 0
while true do
  local c = server:accept()
  c:settimeout(5)
  local line = c:receive("*l") or ""
  local length, action = 0, nil
  while true do
    local h = c:receive("*l")
    if not h or h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    name = name and name:lower()
    if name == "content-length" then length = tonumber(value) end
    if name == "x-tc-action" then action = value end
  end
  local body = length > 0 and c:receive(length) or ""
  local answer
  if line:find("^GET /_stop") then
    c:send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c:close()
    break
  elseif line:find("^GET /_count") then
    answer = tostring(served)
  else
    served = served + 1
    if action == "Reply" then
      answer = cjson.decode(body).Text
    else
      answer = '{"Response":{"Body":' .. cjson.encode(body) .. ',"RequestId":"echo"}}'
    end
  end
  c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #answer
    .. "\r\nConnection: close\r\n\r\n" .. answer)
  c:close()
end
]]

describe("request encoding", function()
  local echo, session, url

  local function get(path)
    local socket = require("socket")
    local c = assert(socket.connect("127.0.0.1", echo.port))
    c:settimeout(5)
    c:send("GET " .. path .. " HTTP/1.0\r\n\r\n")
    local data = c:receive("*a")
    c:close()
    return (data or ""):match("\r\n\r\n(.*)$")
  end

  setup(function()
    local script = util.tmpdir("encode") .. "/echo.lua"
    util.write_file(script, SERVER)
    local pipe = assert(io.popen("exec " .. util.lua_command(script), "r"))
    local port = (pipe:read("*l") or ""):match("^ECHO_READY (%d+)")
    assert(port, "the echo server did not start")
    echo = { pipe = pipe, port = tonumber(port) }
    url = "http://127.0.0.1:" .. port
    session = assert(core.new_session{ scheme = "http", host = "127.0.0.1", port = tonumber(port),
      region = "ap-guangzhou", timeout = 5, connect_timeout = 2 })
  end)

  teardown(function()
    if session then session:close() end
    if echo then
      pcall(get, "/_stop")
      echo.pipe:close()
    end
  end)

  local function call(action, params)
    return core.call(session, { secret_id = "AKIDEXAMPLE", secret_key = "example-key", action = action,
      version = "2019-04-23", params = params })
  end

  -- The bytes core.call put on the wire for params.
  local function sent(params)
    local res, err = call("Echo", params)
    assert(res, err and err.message)
    return res.Body
  end

  local function reply(text) return call("Reply", { Text = text }) end

  describe("on the wire, where lua-cjson 2.1.0 wrote 14 digits and {} for every empty table", function()
    it("sends 1234567890123456 exactly (not 1.2345678901235e+15)", function()
      assert.are.equal('{"A":1234567890123456}', sent{ A = 1234567890123456 })
    end)

    it("sends 9007199254740993 exactly on Lua 5.4, and the double it is on LuaJIT (not 9.007199254741e+15)",
      function()
        assert.are.equal(HAS_INTEGERS and '{"X":9007199254740993}' or '{"X":9007199254740992}',
          sent{ X = 9007199254740993 })
      end)

    it("sends fractions with the fewest digits that read back the same (0.1, 1/3, 1e-7)", function()
      assert.are.equal("[0.1,0.3333333333333333,1e-07,2.5]", sent{ Values = { 0.1, 1 / 3, 1e-7, 2.5 } }
        :match("%[.*%]"))
    end)

    it("sends a marked empty table as [] and a plain one as {}", function()
      local body = sent{ Ids = iot.array{}, Fixed = iot.empty_array, Filters = {} }
      assert.truthy(body:find('"Ids":[]', 1, true), body)
      assert.truthy(body:find('"Fixed":[]', 1, true), body)
      assert.truthy(body:find('"Filters":{}', 1, true), body)
    end)

    it("sends an empty Array-typed parameter of an action as [] once checked", function()
      local p = { name = "Ids", type = "Array", items = "Integer" }
      local action = { name = "ListThings", params = { p }, param_by_name = { Ids = p } }
      local params = assert(check.params(action, { Ids = {} }))
      assert.are.equal('{"Ids":[]}', sent(params))
      params = assert(check.params(action, { Ids = { 1, 2.0 } }))
      assert.are.equal('{"Ids":[1,2]}', sent(params))
    end)

    it("refuses NaN and the infinities before sending, naming the field by its path", function()
      local before = tonumber(get("/_count"))
      for _, bad in ipairs{ 0 / 0, math.huge, -math.huge } do
        local res, err = call("Echo", { Devices = { { Name = "a" }, { Name = bad } } })
        assert.is_nil(res)
        assert.are.equal("ClientError.InvalidParameter", err.code)
        assert.are.equal("Devices[2].Name", err.field)
        assert.is_false(err.sent)
      end
      assert.are.equal(before, tonumber(get("/_count")))
    end)

    it("refuses a table that is neither an array nor an object, naming it", function()
      local _, err = call("Echo", { Devices = { [1] = "a", [3] = "c" } })
      assert.are.equal("ClientError.InvalidParameter", err.code)
      assert.are.equal("Devices", err.field)
      _, err = call("Echo", { Devices = { "a", Name = "b" } })
      assert.are.equal("Devices", err.field)
    end)

    it("sends a body given as JSON text exactly as given (nginx encodes before its thread)", function()
      local text = core.json_encode({ Ids = iot.empty_array, N = 1234567890123456 }, "params")
      local res = assert(core.call(session, { secret_id = "AKIDEXAMPLE", secret_key = "example-key",
        action = "Echo", version = "2019-04-23", body = text }))
      assert.are.equal(text, res.Body)
      -- Misuse by Lua code raises (the core's convention), naming the field.
      local ok, msg = pcall(core.call, session, { secret_id = "AKIDEXAMPLE", secret_key = "example-key",
        action = "Echo", version = "2019-04-23", body = text, params = {} })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("params or body", 1, true), msg)
      ok, msg = pcall(core.call, session, { secret_id = "AKIDEXAMPLE", secret_key = "example-key",
        action = "Echo", version = "2019-04-23", body = {} })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("'body'", 1, true), msg)
      local _, err = core.json_encode({ [true] = 1 }, "params")
      assert.are.equal("params", err.field)
    end)

    it("the client: exact numbers, the markers, and InvalidParameter naming the field, with nothing sent",
      function()
        local client = assert(iot.new{ region = "ap-guangzhou", endpoint = url, secret_id = "AKIDEXAMPLE",
          secret_key = "example-key", metadata_endpoint = false, max_attempts = 1 })
        local res = assert(client:call("Echo", { A = 1234567890123456, Ids = iot.empty_array }))
        assert.truthy(res.Body:find('"A":1234567890123456', 1, true), res.Body)
        assert.truthy(res.Body:find('"Ids":[]', 1, true), res.Body)
        local before = tonumber(get("/_count"))
        local _, err = client:call("Echo", { Devices = { { Name = 0 / 0 } } })
        assert.is_true(iot.is_error(err))
        assert.are.equal("ClientError.InvalidParameter", err.code)
        assert.are.equal("Devices[1].Name", err.field)
        assert.is_false(err.sent)
        assert.is_false(err.retryable)
        assert.are.equal(before, tonumber(get("/_count")))
        client:close()
      end)
  end)

  describe("responses, decoded strictly", function()
    for _, text in ipairs{ "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1e400", "-1e400" } do
      it("refuses " .. text .. " as ClientError.ParseJsonError", function()
        local res, err = reply('{"Response":{"N":' .. text .. ',"RequestId":"r"}}')
        assert.is_nil(res)
        assert.are.equal("ClientError.ParseJsonError", err.code)
      end)
    end

    it("reads integers exactly up to 2^53, and larger ones as the nearest double", function()
      local res = assert(reply('{"Response":{"A":9007199254740991,"B":-9007199254740992,'
        .. '"C":9007199254740993,"D":12345678901234567890,"RequestId":"r"}}'))
      assert.are.equal(9007199254740991, res.A)
      assert.are.equal(-9007199254740992, res.B)
      assert.are.equal(2 ^ 53, res.C)          -- the nearest double, within 2^53: an integer on Lua 5.4
      assert.are.equal(12345678901234567168, res.D)
      if HAS_INTEGERS then
        assert.are.equal("integer", math.type(res.A))
        assert.are.equal("integer", math.type(res.C))
        assert.are.equal("float", math.type(res.D))
      end
    end)
  end)
end)

describe("core.json_encode", function()
  local function encode(v)
    local text, err = core.json_encode(v)
    return text or err.field .. ": " .. err.message
  end

  it("writes integers exactly, over the whole 64-bit range on Lua 5.4", function()
    assert.are.equal("[0,-1,4294967296,1234567890123456]", encode{ 0, -1, 2 ^ 32, 1234567890123456 })
    if HAS_INTEGERS then
      assert.are.equal("[9223372036854775807,-9223372036854775808]", encode{ math.maxinteger, math.mininteger })
    end
  end)

  it("writes integral floats below 2^53 as integers, others with 15 to 17 digits", function()
    assert.are.equal("[3,0,9007199254740991,-9007199254740991]", encode{ 3.0, -0.0, 2 ^ 53 - 1, -(2 ^ 53 - 1) })
    assert.are.equal("[9007199254740992,1.8446744073709552e+19,1e+21,0.30000000000000004,3.141592653589793]",
      encode{ 2 ^ 53, 2 ^ 64, 1e21, 0.1 + 0.2, math.pi })
    assert.are.equal("[5e-324]", encode{ 5e-324 }:gsub("4.94065645841247e%-324", "5e-324"))
    for _, x in ipairs{ 0.1, 1 / 3, 1e300, 2.2250738585072014e-308, 1.7976931348623157e308, 5e-324 } do
      assert.are.equal(x, tonumber(encode(x)))
    end
    -- Fractions of up to 6 decimals take a path without printf; both must read back as the same double.
    for _ = 1, 2000 do
      local x = math.random(-2 ^ 31, 2 ^ 31) / 10 ^ math.random(0, 9)
      local text = encode(x)
      assert.are.equal(x, tonumber(text), text)
      assert.is_true(#text <= #string.format("%.17g", x), text)
    end
  end)

  it("refuses NaN and the infinities, naming the value", function()
    assert.are.equal("value: value is NaN, which JSON cannot carry", encode(0 / 0))
    assert.are.equal("A[2]: A[2] is infinity, which JSON cannot carry", encode{ A = { 1, math.huge } })
    assert.are.equal("A.B: A.B is -infinity, which JSON cannot carry", encode{ A = { B = -math.huge } })
  end)

  it("escapes quotes, backslashes and control characters; other bytes pass through", function()
    assert.are.equal([["a\"b\\c\u0000\u0001\n\r\t\u001f]] .. "\127\255é/\"",
      encode("a\"b\\c\0\1\n\r\t\31\127\255é/"))
  end)

  it("arrays are keys 1..n, objects string keys; the rest is refused, naming the table", function()
    assert.are.equal('[1,"a",true,false]', encode{ 1, "a", true, false })
    assert.are.equal('{"k":[{"x":1}]}', encode{ k = { { x = 1 } } })
    assert.are.equal("{}", encode{})
    assert.are.equal("[]", encode(core.array()))
    assert.are.equal("[1,2]", encode(core.array{ 1, 2 }))
    assert.are.equal("Devices[2]: Devices[2] is not an array: its keys are not exactly 1..n",
      encode{ Devices = { {}, { [2] = 1 } } })
    assert.are.equal("a: a mixes number and string keys: it is neither an array nor an object",
      encode{ a = { 1, x = 2 } })
    assert.are.equal("value: value has a boolean key: JSON keys are strings", encode{ [true] = 1 })
    assert.are.equal("m: m is marked as an array but has string keys", encode{ m = core.array{ x = 1 } })
    assert.are.equal('["odd key"]: ["odd key"] is not an array: its keys are not exactly 1..n',
      encode{ ["odd key"] = { [0] = 1 } })
  end)

  it("refuses functions, coroutines and userdata; writes cjson.null as null", function()
    assert.are.equal("f: f is a function, which JSON cannot carry", encode{ f = print })
    assert.are.equal("[1]: [1] is a thread, which JSON cannot carry", encode{ coroutine.create(print) })
    assert.truthy(encode{ io.stdout }:find("^%[1%]: %[1%] is a userdata"))
    assert.are.equal('{"k":null}', encode{ k = cjson.null })
  end)

  it("stops at 64 nested tables, which also ends a cycle", function()
    local t = {}
    local inner = t
    for _ = 1, 63 do
      inner[1] = {}
      inner = inner[1]
    end
    assert.are.equal(string.rep("[", 63) .. "{}" .. string.rep("]", 63), encode(t))
    inner[1] = {}
    assert.truthy(encode(t):find("is nested more than 64 tables deep", 1, true))
    local cycle = {}
    cycle.self = cycle
    assert.truthy(encode{ c = cycle }:find("^c%.self%.self.*%.%.%.: "))
  end)

  it("reads tables raw: no __index, __pairs or __len runs", function()
    local called = false
    local mt = { __index = function() called = true end, __len = function() called = true return 9 end,
      __pairs = function() called = true return next, {}, nil end }
    assert.are.equal('{"a":1}', encode(setmetatable({ a = 1 }, mt)))
    assert.is_false(called)
  end)

  it("the markers: iot.array marks and returns its table; iot.empty_array is read-only", function()
    assert.are.equal(core.array, iot.array)
    assert.are.equal(core.empty_array, iot.empty_array)
    local t = {}
    assert.are.equal(t, iot.array(t))
    assert.are.equal(core.array_mt, getmetatable(t))
    assert.are.equal(t, iot.array(t))          -- marking twice is harmless
    assert.has_error(function() iot.array(setmetatable({}, {})) end)
    assert.has_error(function() iot.array("x") end)
    assert.has_error(function() iot.empty_array[1] = 1 end)
    assert.has_error(function() setmetatable(iot.empty_array, nil) end)
    assert.are.equal(0, #iot.empty_array)
    assert.are.equal("[]", encode(iot.empty_array))
  end)
end)

describe("property: generated values read back as given (the fuzz harness)", function()
  local harness = dofile("spec/fuzz/fuzz_encode.lua")

  it("every input of the fuzz corpus", function()
    local dir = "spec/fuzz/corpus/fuzz_encode"
    local names = util.listing(dir)
    assert.is_true(#names >= 5)
    for _, name in ipairs(names) do
      local ok, err = pcall(harness.fuzz_one, util.read_file(dir .. "/" .. name))
      assert(ok, name .. ": " .. tostring(err))
    end
  end)

  it("3000 random inputs", function()
    local seed = os.time()
    math.randomseed(seed)
    for i = 1, 3000 do
      local bytes = {}
      for j = 1, math.random(0, 400) do bytes[j] = string.char(math.random(0, 255)) end
      local data = table.concat(bytes)
      local ok, err = pcall(harness.fuzz_one, data)
      if not ok then
        local hex = data:gsub(".", function(c) return string.format("%02x", c:byte()) end)
        error(string.format("seed %d, input %d (%s): %s", seed, i, hex, tostring(err)), 0)
      end
    end
  end)

  it("the strict reader refuses what is not JSON", function()
    for _, text in ipairs{ "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "nan", "[1e400]", "\"\1\"", "{a:1}",
      "[1] x", "\"\\x\"", "{\"a\":1,\"a\":2}" } do
      assert.is_false(pcall(harness.read_strict, text), text)
    end
    assert.are.equal(3, harness.read_strict(' {"a" : [ 1 , 2 , 3 ] } ').a[3])
  end)
end)

-- core.new_session, core.call and core.download against the local API emulator, over loopback: the
-- documented response, API errors, every row of the core's error table, and misuse raising.
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

describe("core calls", function()
  local emu, session

  -- A DescribeBatchProduction request; ProductId and BatchProductionId in extra go into params.
  local function request(extra)
    local req = {
      secret_id = emu.secret_id, secret_key = emu.secret_key, action = "DescribeBatchProduction",
      version = "2019-04-23", params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" },
    }
    for k, v in pairs(extra or {}) do
      if k == "ProductId" or k == "BatchProductionId" then req.params[k] = v else req[k] = v end
    end
    return req
  end

  -- core.new_session's options for a client of the emulator (or of url), plus extra.
  local function target(extra, url)
    local host, port = (url or emu.url):match("^http://([^:/]+):?(%d*)")
    local o = { scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  setup(function()
    emu = emulator.start{ fixture = { rate_limit = 1000000 } }
    session = assert(core.new_session(target{ timeout = 5, connect_timeout = 2 }))
  end)

  teardown(function()
    session:close()
    emu:stop()
  end)

  before_each(function() emu:reset() end)

  it("returns the documented example, with integers as integers and unknown fields kept", function()
    local res, err = core.call(session, request())
    assert.is_nil(err)
    assert.are.equal(3, res.BatchCnt)
    assert.are.equal(0, res.BurnMethod)
    assert.are.equal(1572233486, res.CreateTime)
    assert.are.equal(0, res.GenerationMethod)
    assert.are.equal("", res.UploadUrl)
    assert.are.equal(3, res.Status)
    assert.are.equal(3, res.SuccessCount)
    assert.are.equal("string", type(res.RequestId))
    assert.truthy(res.DownloadUrl:find("^http://127%.0%.0%.1:%d+/"))
    if math.type then assert.are.equal("integer", math.type(res.BatchCnt)) end
    assert.is_nil(res.Error)
  end)

  it("sends the signed headers the service expects, Host with its port and the SDK name", function()
    local english = assert(core.new_session(target{ language = "en-US" }))
    assert(core.call(english, request()))
    english:close()
    local h = emu:counters().last_headers
    assert.are.equal("DescribeBatchProduction", h["x-tc-action"])
    assert.are.equal("2019-04-23", h["x-tc-version"])
    assert.are.equal("ap-guangzhou", h["x-tc-region"])
    assert.are.equal("en-US", h["x-tc-language"])
    assert.are.equal("127.0.0.1:" .. emu.port, h.host)
    assert.are.equal("SDK_LUA_" .. core._VERSION, h["x-tc-requestclient"])
    assert.are.equal("tencentcloud-iotexplorer-lua/" .. core._VERSION, h["user-agent"])
    assert.is_nil(h["x-tc-token"])
    assert.is_nil(h.expect)
  end)

  it("sends the User-Agent a session is given", function()
    local named = assert(core.new_session(target{ user_agent = "factory-line/7" }))
    assert(core.call(named, request()))
    named:close()
    assert.are.equal("factory-line/7", emu:counters().last_headers["user-agent"])
  end)

  it("sends Authorization: SKIP and no signature for an unsigned request", function()
    local req = request{ unsigned = true }
    req.secret_id, req.secret_key = nil, nil
    local _, err = core.call(session, req)
    assert.is_truthy(err)   -- the emulator wants a signature
    assert.are.equal("SKIP", emu:counters().last_headers.authorization)
  end)

  it("sends a body given as a string exactly", function()
    local req = request{ body = '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9"}' }
    req.params = nil
    local res = assert(core.call(session, req))
    assert.are.equal(3, res.BatchCnt)
  end)

  it("sends the token of temporary credentials", function()
    local res, err = core.call(session, request{
      secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key, token = emu.tmp_token })
    assert.is_nil(err)
    assert.are.equal(3, res.BatchCnt)
    assert.are.equal(emu.tmp_token, emu:counters().last_headers["x-tc-token"])
  end)

  it("reuses one connection across calls (keep-alive)", function()
    local before = emu:counters().connections
    for _ = 1, 5 do assert(core.call(session, request())) end
    -- The control requests of the helper open their own connections: one each, counted apart.
    local after = emu:counters().connections
    assert.is_true(after - before <= 2, "connections opened: " .. (after - before))
  end)

  it("calls any action with core.call, encoding params as a JSON object", function()
    local created, err = core.call(session, request{ action = "CreateBatchProduction", params = {
      ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU", BurnMethod = 0, GenerationMethod = 0, BatchCnt = 2 } })
    assert.is_nil(err)
    assert.truthy(created.BatchProductionId:match("^LC%-"))
    local list = assert(core.call(session, request{ action = "GetBatchProductionsList",
      params = { ProjectId = "PROJECT0001", Offset = 0, Limit = 10 } }))
    assert.is_true(list.TotalCnt >= 1)
    local found = false
    for _, b in ipairs(list.BatchProductions) do found = found or b.BatchProductionId == created.BatchProductionId end
    assert.is_true(found)
  end)

  describe("error table", function()
    it("the envelope's Error.Code, with message and RequestId (unknown batch)", function()
      local res, err = core.call(session, request{ BatchProductionId = "LC-missing" })
      assert.is_nil(res)
      assert.are.equal("ResourceNotFound.BatchProductionNotExist", err.code)
      assert.are.equal("string", type(err.message))
      assert.are.equal("string", type(err.request_id))
      assert.are.equal(200, err.http_status)
      assert.is_true(err.sent)
      assert.are.equal("number", type(err.server_date))
      assert.is_true(math.abs(err.server_date - os.time()) < 60)
    end)

    it("the envelope's Error.Code on a non-200 status too", function()
      emu:fault{ kind = "raw", status = 500, headers = { ["Content-Type"] = "application/json" },
                 body = '{"Response":{"Error":{"Code":"InternalError","Message":"boom"},"RequestId":"r-1"}}' }
      local _, err = core.call(session, request())
      assert.are.equal("InternalError", err.code)
      assert.are.equal(500, err.http_status)
      assert.are.equal("r-1", err.request_id)
    end)

    it("a signature made with the wrong key is the service's AuthFailure.SignatureFailure", function()
      local _, err = core.call(session, request{ secret_key = "not-the-key" })
      assert.are.equal("AuthFailure.SignatureFailure", err.code)
    end)

    it("a timestamp far from the server's clock is AuthFailure.SignatureExpire, with the server's Date", function()
      local _, err = core.call(session, request{ timestamp = os.time() - 3600 })
      assert.are.equal("AuthFailure.SignatureExpire", err.code)
      assert.is_true(math.abs(err.server_date - os.time()) < 60)
    end)

    it("ClientError.NetworkError, sent = false, when nothing listens", function()
      local port = util.dead_port()
      local dead = assert(core.new_session(target({}, "http://127.0.0.1:" .. port)))
      local _, err = core.call(dead, request())
      dead:close()
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_false(err.sent)
      assert.are.equal(7, err.curl_code)
    end)

    it("ClientError.NetworkError, sent = false, when the name does not resolve", function()
      local nowhere = assert(core.new_session(target({}, "http://no-such-host.invalid")))
      local _, err = core.call(nowhere, request())
      nowhere:close()
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_false(err.sent)
    end)

    -- On a reused connection libcurl itself resends once when the server closes before answering,
    -- so each reset is tried on a fresh session's first connection.
    for _, when in ipairs{ "before", "headers" } do
      it("ClientError.NetworkError, sent = true, when the connection is reset (" .. when .. ")", function()
        local fresh = assert(core.new_session(target()))
        emu:fault{ kind = "reset", when = when }
        local _, err = core.call(fresh, request())
        fresh:close()
        assert.are.equal("ClientError.NetworkError", err.code)
        assert.is_true(err.sent)
      end)
    end

    it("sends a request with fresh_connection once, even when a warm connection dies", function()
      assert(core.call(session, request()))   -- warm the connection
      emu:reset()
      emu:fault{ kind = "reset" }
      local _, err = core.call(session, request{ action = "CreateBatchProduction", fresh_connection = true,
        params = { ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU", BurnMethod = 0, GenerationMethod = 0,
                   BatchCnt = 1 } })
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.are.equal(1, emu:counters().requests)
    end)

    it("ClientError.NetworkError when the body is cut short", function()
      emu:fault{ kind = "truncate" }
      local _, err = core.call(session, request())
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_true(err.sent)
    end)

    it("ClientError.Timeout when the answer is slower than the call's timeout", function()
      emu:fault{ kind = "delay", seconds = 1.5 }
      local started = core.now()
      local _, err = core.call(session, request{ timeout = 0.3 })
      assert.are.equal("ClientError.Timeout", err.code)
      assert.is_true(core.now() - started < 1.2)
    end)

    it("ClientError.HttpStatusCodeError for a 502 HTML page", function()
      emu:fault{ kind = "html", status = 502 }
      local _, err = core.call(session, request())
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(502, err.http_status)
    end)

    it("ClientError.HttpStatusCodeError for a redirect, which is not followed", function()
      emu:fault{ kind = "raw", status = 302, headers = { Location = emu.url .. "/elsewhere" }, body = "" }
      local _, err = core.call(session, request())
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(302, err.http_status)
      assert.are.equal(1, emu:counters().requests)
    end)

    for _, case in ipairs{
      { "an empty body", { kind = "raw", status = 200, body = "" } },
      { "malformed JSON", { kind = "malformed_json" } },
      { "an HTML page with status 200", { kind = "html", status = 200 } },
      { "a JSON array", { kind = "raw", status = 200, body = "[1,2,3]" } },
      { "JSON without Response", { kind = "raw", status = 200, body = '{"Other":{}}' } },
      { "an Error without Code", { kind = "raw", status = 200, body = '{"Response":{"Error":{"Message":"x"}}}' } },
    } do
      it("ClientError.ParseJsonError for " .. case[1], function()
        emu:fault(case[2])
        local res, err = core.call(session, request())
        assert.is_nil(res)
        assert.are.equal("ClientError.ParseJsonError", err.code)
        assert.are.equal(200, err.http_status)
      end)
    end

    it("ClientError.ResponseTooLarge past the session's size cap", function()
      local small = assert(core.new_session(target{ max_response_bytes = 1024 }))
      emu:fault{ kind = "big", bytes = 64 * 1024 }
      local _, err = core.call(small, request())
      small:close()
      assert.are.equal("ClientError.ResponseTooLarge", err.code)
    end)

    it("passes invalid UTF-8 in strings through as bytes", function()
      emu:fault{ kind = "raw", status = 200, body = '{"Response":{"Name":"\xff\xfe ok","RequestId":"r"}}' }
      local res = assert(core.call(session, request()))
      assert.are.equal("\xff\xfe ok", res.Name)
    end)

    it("drops JSON nulls", function()
      emu:fault{ kind = "raw", status = 200, body = '{"Response":{"UploadUrl":null,"RequestId":"r"}}' }
      local res = assert(core.call(session, request()))
      assert.is_nil(res.UploadUrl)
      assert.are.equal("r", res.RequestId)
    end)

    it("raises on misuse, before any I/O, without the value in the message", function()
      for field, value in pairs{ params = "x", secret_key = 5, secret_id = "a\nb", token = "t\r\nX-Evil: 1",
                                  action = "", version = false, timeout = -1, timestamp = 1.5,
                                  fresh_connection = "yes" } do
        local ok, msg = pcall(core.call, session, request{ [field] = value })
        assert.is_false(ok, field)
        assert.truthy(tostring(msg):find("'" .. field .. "'", 1, true), msg)
        assert.falsy(tostring(msg):find("X-Evil", 1, true))
      end
      assert.has_error(function() core.call(session, request{ body = "{}" }) end)   -- params and body
      assert.are.equal(0, emu:counters().requests)
    end)

    it("ClientError.InvalidParameter for params JSON cannot hold, before any I/O", function()
      local _, err = core.call(session, request{ params = { f = print } })
      assert.are.equal("ClientError.InvalidParameter", err.code)
      assert.are.equal("f", err.field)   -- the path of the value inside params
      assert.is_false(err.sent)
      assert.are.equal(0, emu:counters().requests)
    end)
  end)

  describe("sessions", function()
    it("close is idempotent and a closed session answers with an error", function()
      local s = assert(core.new_session(target()))
      s:close()
      s:close()
      local res, err = core.call(s, request())
      assert.is_nil(res)
      assert.are.equal("ClientError.SessionClosed", err.code)
    end)

    it("raises for a wrong session or request type", function()
      assert.has_error(function() core.call({}, request()) end)
      assert.has_error(function() core.call(session, "x") end)
      assert.has_error(function() core.call(nil, {}) end)
    end)

    it("raises for bad or unknown options, naming them", function()
      for _, case in ipairs{
        { { timeout = "soon" }, "timeout" }, { { scheme = "ftp", host = "h", region = "r" }, "scheme" },
        { { host = "h" }, "region" }, { { host = "user@h", region = "r" }, "host" },
        { { host = "h/path", region = "r" }, "host" }, { { host = "h", region = "r\n" }, "region" },
        { { host = "h", port = 70000, region = "r" }, "port" }, { { timout = 1 }, "timout" },
        { { interruptible = 1 }, "interruptible" },
      } do
        local ok, msg = pcall(core.new_session, case[1])
        assert.is_false(ok, case[2])
        assert.truthy(tostring(msg):find(case[2], 1, true), msg)
      end
    end)

    it("builds the URL and Host once: an IPv6 literal gets brackets, the port follows", function()
      local s = assert(core.new_session{ scheme = "http", host = "::1", port = 8080, region = "ap-guangzhou" })
      assert.truthy(tostring(s):find("http://[::1]:8080/", 1, true))
      s:close()
      s = assert(core.new_session{ host = "iotexplorer.tencentcloudapi.com", region = "ap-guangzhou" })
      assert.truthy(tostring(s):find("https://iotexplorer.tencentcloudapi.com/", 1, true))
      s:close()
    end)

    it("a session without a host downloads only: calling with it raises", function()
      local s = assert(core.new_session())
      assert.has_error(function() core.call(s, request()) end)
      s:close()
    end)
  end)

  describe("core.download", function()
    local path = os.tmpname()
    after_each(function() os.remove(path) end)

    it("streams the batch's CSV to a file and reports progress", function()
      local res = assert(core.call(session, request()))
      local seen = 0
      local out = assert(core.download(session, { url = res.DownloadUrl, path = path,
        on_progress = function(received) seen = received end }))
      assert.are.equal(200, out.http_status)
      local f = assert(io.open(path, "rb"))
      local csv = f:read("*a")
      f:close()
      assert.are.equal(#csv, out.bytes)
      assert.are.equal(seen, out.bytes)
      local lines = 0
      for _ in csv:gmatch("[^\n]+") do lines = lines + 1 end
      assert.are.equal(1 + res.BatchCnt, lines)
    end)

    it("reports a Lua error in the progress function after libcurl returns", function()
      local res = assert(core.call(session, request()))
      local _, err = core.download(session, { url = res.DownloadUrl, path = path,
        on_progress = function() error("stop here") end })
      assert.are.equal("ClientError.CallbackError", err.code)
      assert.truthy(err.message:find("stop here", 1, true))
      -- The session still works afterwards.
      assert(core.call(session, request()))
    end)

    it("creates no file for a refused link", function()
      os.remove(path)
      local res = assert(core.call(session, request()))
      local _, err = core.download(session, { url = res.DownloadUrl:gsub("sig=%w+", "sig=bad"), path = path })
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(403, err.http_status)
      assert.is_nil(io.open(path, "rb"))
    end)
  end)
end)

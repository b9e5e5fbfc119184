-- core.describe_batch_production, core.call and core.download against the local API emulator, over
-- loopback: the documented response, API errors, and every row of the core's error table.
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

describe("core calls", function()
  local emu, session

  local function request(extra)
    local req = {
      secret_id = emu.secret_id, secret_key = emu.secret_key, region = "ap-guangzhou", endpoint = emu.url,
      ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9",
    }
    for k, v in pairs(extra or {}) do req[k] = v end
    return req
  end

  setup(function()
    emu = emulator.start{ fixture = { rate_limit = 1000000 } }
    session = assert(core.new_session{ timeout = 5, connect_timeout = 2 })
  end)

  teardown(function()
    session:close()
    emu:stop()
  end)

  before_each(function() emu:reset() end)

  it("returns the documented example, with integers as integers and unknown fields kept", function()
    local res, err = core.describe_batch_production(session, request())
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
    assert(core.describe_batch_production(session, request{ language = "en-US" }))
    local h = emu:counters().last_headers
    assert.are.equal("DescribeBatchProduction", h["x-tc-action"])
    assert.are.equal("2019-04-23", h["x-tc-version"])
    assert.are.equal("ap-guangzhou", h["x-tc-region"])
    assert.are.equal("en-US", h["x-tc-language"])
    assert.are.equal("127.0.0.1:" .. emu.port, h.host)
    assert.are.equal("SDK_LUA_" .. core._VERSION, h["x-tc-requestclient"])
    assert.is_nil(h["x-tc-token"])
    assert.is_nil(h.expect)
  end)

  it("signs x-tc-action too when asked", function()
    local res, err = core.describe_batch_production(session,
      request{ signed_headers = "content-type;host;x-tc-action" })
    assert.is_nil(err)
    assert.are.equal(3, res.BatchCnt)
  end)

  it("sends the token of temporary credentials", function()
    local res, err = core.describe_batch_production(session, request{
      secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key, token = emu.tmp_token })
    assert.is_nil(err)
    assert.are.equal(3, res.BatchCnt)
    assert.are.equal(emu.tmp_token, emu:counters().last_headers["x-tc-token"])
  end)

  it("reuses one connection across calls (keep-alive)", function()
    local before = emu:counters().connections
    for _ = 1, 5 do assert(core.describe_batch_production(session, request())) end
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
      local res, err = core.describe_batch_production(session, request{ BatchProductionId = "LC-missing" })
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
      local _, err = core.describe_batch_production(session, request())
      assert.are.equal("InternalError", err.code)
      assert.are.equal(500, err.http_status)
      assert.are.equal("r-1", err.request_id)
    end)

    it("a signature made with the wrong key is the service's AuthFailure.SignatureFailure", function()
      local _, err = core.describe_batch_production(session, request{ secret_key = "not-the-key" })
      assert.are.equal("AuthFailure.SignatureFailure", err.code)
    end)

    it("a timestamp far from the server's clock is AuthFailure.SignatureExpire, with the server's Date", function()
      local _, err = core.describe_batch_production(session, request{ timestamp = os.time() - 3600 })
      assert.are.equal("AuthFailure.SignatureExpire", err.code)
      assert.is_true(math.abs(err.server_date - os.time()) < 60)
    end)

    it("ClientError.NetworkError, sent = false, when nothing listens", function()
      local port = util.dead_port()
      local _, err = core.describe_batch_production(session, request{ endpoint = "http://127.0.0.1:" .. port })
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_false(err.sent)
      assert.are.equal(7, err.curl_code)
    end)

    it("ClientError.NetworkError, sent = false, when the name does not resolve", function()
      local _, err = core.describe_batch_production(session, request{ endpoint = "http://no-such-host.invalid" })
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_false(err.sent)
    end)

    -- On a reused connection libcurl itself resends once when the server closes before answering,
    -- so each reset is tried on a fresh session's first connection.
    for _, when in ipairs{ "before", "headers" } do
      it("ClientError.NetworkError, sent = true, when the connection is reset (" .. when .. ")", function()
        local fresh = assert(core.new_session())
        emu:fault{ kind = "reset", when = when }
        local _, err = core.describe_batch_production(fresh, request())
        fresh:close()
        assert.are.equal("ClientError.NetworkError", err.code)
        assert.is_true(err.sent)
      end)
    end

    it("sends a request with fresh_connection once, even when a warm connection dies", function()
      assert(core.describe_batch_production(session, request()))   -- warm the connection
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
      local _, err = core.describe_batch_production(session, request())
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.is_true(err.sent)
    end)

    it("ClientError.Timeout when the answer is slower than the call's timeout", function()
      emu:fault{ kind = "delay", seconds = 1.5 }
      local started = core.now()
      local _, err = core.describe_batch_production(session, request{ timeout = 0.3 })
      assert.are.equal("ClientError.Timeout", err.code)
      assert.is_true(core.now() - started < 1.2)
    end)

    it("ClientError.HttpStatusCodeError for a 502 HTML page", function()
      emu:fault{ kind = "html", status = 502 }
      local _, err = core.describe_batch_production(session, request())
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(502, err.http_status)
    end)

    it("ClientError.HttpStatusCodeError for a redirect, which is not followed", function()
      emu:fault{ kind = "raw", status = 302, headers = { Location = emu.url .. "/elsewhere" }, body = "" }
      local _, err = core.describe_batch_production(session, request())
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
        local res, err = core.describe_batch_production(session, request())
        assert.is_nil(res)
        assert.are.equal("ClientError.ParseJsonError", err.code)
        assert.are.equal(200, err.http_status)
      end)
    end

    it("ClientError.ResponseTooLarge past the session's size cap", function()
      local small = assert(core.new_session{ max_response_bytes = 1024 })
      emu:fault{ kind = "big", bytes = 64 * 1024 }
      local _, err = core.describe_batch_production(small, request())
      small:close()
      assert.are.equal("ClientError.ResponseTooLarge", err.code)
    end)

    it("passes invalid UTF-8 in strings through as bytes", function()
      emu:fault{ kind = "raw", status = 200, body = '{"Response":{"Name":"\xff\xfe ok","RequestId":"r"}}' }
      local res = assert(core.describe_batch_production(session, request()))
      assert.are.equal("\xff\xfe ok", res.Name)
    end)

    it("drops JSON nulls", function()
      emu:fault{ kind = "raw", status = 200, body = '{"Response":{"UploadUrl":null,"RequestId":"r"}}' }
      local res = assert(core.describe_batch_production(session, request()))
      assert.is_nil(res.UploadUrl)
      assert.are.equal("r", res.RequestId)
    end)

    it("ClientError.InvalidParameter before any I/O", function()
      for field, value in pairs{ ProductId = "", BatchProductionId = 5, secret_key = "a\nb",
                                  endpoint = "file:///etc/passwd", region = false, timeout = -1 } do
        local _, err = core.describe_batch_production(session, request{ [field] = value })
        assert.are.equal("ClientError.InvalidParameter", err.code)
        assert.are.equal(field, err.field)
        assert.is_false(err.sent)
      end
      for _, endpoint in ipairs{ "ftp://x", "gopher://x", "http://", "http://user:pw@h", "http://h/path",
                                 "http://h?q" } do
        local _, err = core.describe_batch_production(session, request{ endpoint = endpoint })
        assert.are.equal("endpoint", err.field)
      end
      assert.are.equal(0, emu:counters().requests)
    end)
  end)

  describe("sessions", function()
    it("close is idempotent and a closed session answers with an error", function()
      local s = assert(core.new_session())
      s:close()
      s:close()
      local res, err = core.describe_batch_production(s, request())
      assert.is_nil(res)
      assert.are.equal("ClientError.SessionClosed", err.code)
    end)

    it("raises only for a wrong session or request type", function()
      assert.has_error(function() core.describe_batch_production({}, request()) end)
      assert.has_error(function() core.describe_batch_production(session, "x") end)
      assert.has_error(function() core.call(nil, {}) end)
    end)

    it("refuses bad options", function()
      local s, err = core.new_session{ timeout = "soon" }
      assert.is_nil(s)
      assert.are.equal("timeout", err.field)
    end)
  end)

  describe("core.download", function()
    local path = os.tmpname()
    after_each(function() os.remove(path) end)

    it("streams the batch's CSV to a file and reports progress", function()
      local res = assert(core.describe_batch_production(session, request()))
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
      local res = assert(core.describe_batch_production(session, request()))
      local _, err = core.download(session, { url = res.DownloadUrl, path = path,
        on_progress = function() error("stop here") end })
      assert.are.equal("ClientError.CallbackError", err.code)
      assert.truthy(err.message:find("stop here", 1, true))
      -- The session still works afterwards.
      assert(core.describe_batch_production(session, request()))
    end)

    it("creates no file for a refused link", function()
      os.remove(path)
      local res = assert(core.describe_batch_production(session, request()))
      local _, err = core.download(session, { url = res.DownloadUrl:gsub("sig=%w+", "sig=bad"), path = path })
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(403, err.http_status)
      assert.is_nil(io.open(path, "rb"))
    end)
  end)
end)

-- Specs for the local API emulator, over real HTTP on loopback. Requests are signed
-- by the helper's own TC3 implementation (not the C module).
local socket = require("socket")
local cjson = require("cjson.safe")
local emulator = require("helpers.emulator")
local util = require("helpers.util")
local tc3 = require("tencentcloud.iotexplorer.emulator.tc3")
local defaults = require("tencentcloud.iotexplorer.emulator.defaults")

local DOC_BATCH = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }

local function err_code(doc)
  return doc and doc.Response and doc.Response.Error and doc.Response.Error.Code
end

-- Opens a keep-alive connection to the emulator.
local function connect(emu)
  local sock = assert(socket.connect(emu.host, emu.port))
  sock:settimeout(10)
  return sock
end

-- Writes a signed DescribeBatchProduction request by hand (no response read).
local function send_signed(emu, sock, extra_headers)
  local ts = os.time()
  local body = cjson.encode(DOC_BATCH)
  local host = emu.host .. ":" .. emu.port
  local auth = emulator.authorization({ secret_id = emu.secret_id, secret_key = emu.secret_key,
    timestamp = ts, host = host, content_type = "application/json", body = body })
  local lines = { "POST / HTTP/1.1", "Host: " .. host, "Content-Type: application/json",
    "X-TC-Action: DescribeBatchProduction", "X-TC-Version: 2019-04-23", "X-TC-Region: ap-guangzhou",
    "X-TC-Timestamp: " .. ts, "Authorization: " .. auth, "Content-Length: " .. #body }
  for _, h in ipairs(extra_headers or {}) do lines[#lines + 1] = h end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body
  assert(sock:send(table.concat(lines, "\r\n")))
end

local function get(url)
  local host, port, path = url:match("^http://([^:/]+):(%d+)(/.*)$")
  return emulator.http(host, tonumber(port), { method = "GET", path = path })
end

describe("TC3 verifier (pure functions)", function()
  -- Published vector from the signature documentation (see /work/shared/api/NOTES.md).
  local body = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
  local headers = {
    ["content-type"] = "application/json; charset=utf-8",
    host = "cvm.tencentcloudapi.com",
    ["x-tc-action"] = "DescribeInstances",
  }

  it("hashes the payload like the documentation", function()
    assert.equal("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", tc3.sha256_hex(body))
  end)

  local cases = {
    { "content-type;host", "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
      "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168" },
    { "content-type;host", "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
      "Gu5t9xGARNpq86cd98joQYCN3*******", "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c" },
    { "content-type;host;x-tc-action", "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84",
      "Gu5t9xGARNpq86cd98joQYCN3*******", "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3" },
  }
  for _, c in ipairs(cases) do
    local signed, hashed, key, sig = c[1], c[2], c[3], c[4]
    it("reproduces the published signature for " .. signed .. " / " .. key, function()
      local cr = tc3.canonical_request("POST", "/", "", headers, signed, body)
      assert.equal(hashed, tc3.sha256_hex(cr))
      local sts = tc3.string_to_sign(1551113065, "2019-02-25", "cvm", cr)
      assert.equal(sig, tc3.signature(key, "2019-02-25", "cvm", sts))
      -- The helper's independent signer agrees with the emulator's verifier.
      local auth = emulator.authorization({
        secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = key, timestamp = 1551113065,
        host = headers.host, content_type = headers["content-type"], action = "DescribeInstances",
        body = body, signed_headers = signed, service = "cvm",
      })
      assert.equal(sig, auth:match("Signature=(%x+)$"))
      local parsed = assert(tc3.parse_authorization(auth))
      assert.is_true((tc3.verify({ method = "POST", path = "/", query = "", headers = headers, body = body },
        parsed, key, "1551113065")))
    end)
  end

  it("rejects malformed Authorization values", function()
    assert.is_nil(tc3.parse_authorization("HMAC-SHA1 Credential=a/b/c/d, SignedHeaders=host, Signature=00"))
    assert.is_nil(tc3.parse_authorization("TC3-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature="
      .. string.rep("0", 64)))
    assert.is_nil(tc3.parse_authorization(nil))
  end)
end)

describe("emulator", function()
  local emu

  lazy_setup(function()
    emu = emulator.start()
  end)

  lazy_teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:reset()
    emu:set({ clock_skew = 0, status_step_seconds = 1, download_ttl = 900, rate_limit = 20 })
  end)

  describe("startup and HTTP", function()
    it("reports its URL and default credentials", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", emu.url)
      assert.is_number(emu.port)
      assert.equal(defaults.SECRET_ID, emu.secret_id)
      assert.equal(defaults.SECRET_KEY, emu.secret_key)
    end)

    it("reproduces the documented DescribeBatchProduction example", function()
      local status, headers, doc, raw = emu:call("DescribeBatchProduction", DOC_BATCH)
      assert.equal(200, status)
      assert.equal("application/json", headers["content-type"])
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", headers.date)
      local r = doc.Response
      assert.is_nil(r.Error)
      assert.equal(3, r.BatchCnt)
      assert.equal(0, r.BurnMethod)
      assert.equal(1572233486, r.CreateTime)
      assert.equal(0, r.GenerationMethod)
      assert.equal("", r.UploadUrl)
      assert.equal(3, r.Status)
      assert.equal(3, r.SuccessCount)
      assert.equal("", r.LastFailedReason)
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.RequestId)
      local url_pattern = "^" .. emu.url:gsub("%p", "%%%0")
        .. "/_download/R32ONVL0EU_LC%-ya6zinv9%.csv%?expires=%d+&sig=%x+$"
      assert.matches(url_pattern, r.DownloadUrl)
      -- Integers stay integers on the wire.
      assert.matches('"BatchCnt":3[,}]', raw)
      assert.matches('"CreateTime":1572233486[,}]', raw)
    end)

    it("keeps a connection alive for several requests", function()
      local before = emu:counters().connections
      local sock = connect(emu)
      local s1, _, d1 = emu:call("DescribeBatchProduction", DOC_BATCH, { sock = sock, keep = true })
      local s2, _, d2 = emu:call("DescribeBatchProduction", DOC_BATCH, { sock = sock, keep = true })
      sock:close()
      assert.equal(200, s1)
      assert.equal(200, s2)
      assert.is_nil(d1.Response.Error)
      assert.is_nil(d2.Response.Error)
      local c = emu:counters()
      assert.equal(before + 2, c.connections)   -- the kept-alive one and this counters call
      assert.equal(2, c.requests)
    end)

    it("closes the connection after Connection: close", function()
      local sock = connect(emu)
      local status, headers = emu:call("DescribeBatchProduction", DOC_BATCH,
        { sock = sock, keep = true, headers = { Connection = "close" } })
      assert.equal(200, status)
      assert.equal("close", headers.connection)
      local data, err = sock:receive(1)
      sock:close()
      assert.is_nil(data)
      assert.equal("closed", err)
    end)

    it("answers a second connection while a delayed response is pending", function()
      emu:fault({ kind = "delay", seconds = 1.0, count = 1 })
      local slow, fast = connect(emu), connect(emu)
      local t0 = socket.gettime()
      -- Send the slow request first, then the fast one on another connection.
      send_signed(emu, slow)
      socket.sleep(0.1)   -- make sure the slow request is the one that takes the fault
      send_signed(emu, fast)
      local fs = emulator.read_response(fast)
      local t_fast = socket.gettime() - t0
      local ss = emulator.read_response(slow)
      local t_slow = socket.gettime() - t0
      slow:close(); fast:close()
      assert.equal(200, fs)
      assert.equal(200, ss)
      assert.is_true(t_fast < 0.6, "fast request took " .. t_fast)
      assert.is_true(t_slow >= 0.95, "slow request took " .. t_slow)
    end)

    it("rejects bodies over 10 MB with RequestSizeLimitExceeded", function()
      local sock = connect(emu)
      assert(sock:send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        .. "Content-Length: " .. (10 * 1024 * 1024 + 1) .. "\r\n\r\n{"))
      local status, headers, body = emulator.read_response(sock)
      sock:close()
      assert.equal(200, status)
      assert.equal("close", headers.connection)
      assert.equal("RequestSizeLimitExceeded", err_code(cjson.decode(body)))
    end)

    it("rejects chunked request bodies cleanly", function()
      local sock = connect(emu)
      assert(sock:send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n0\r\n\r\n"))
      local status, _, body = emulator.read_response(sock)
      sock:close()
      assert.equal(411, status)
      assert.equal("UnsupportedProtocol", err_code(cjson.decode(body)))
    end)

    it("answers Expect: 100-continue with an interim response", function()
      local sock = connect(emu)
      send_signed(emu, sock, { "Expect: 100-continue" })
      local interim = emulator.read_response(sock)
      local status, _, body = emulator.read_response(sock)
      sock:close()
      assert.equal(100, interim)
      assert.equal(200, status)
      assert.is_nil(err_code(cjson.decode(body)))
    end)
  end)

  describe("authentication", function()
    local function code(params, opts)
      local status, _, doc = emu:call("DescribeBatchProduction", params or DOC_BATCH, opts)
      assert.equal(200, status)
      return err_code(doc)
    end

    it("accepts content-type;host;x-tc-action signatures", function()
      assert.is_nil(code(nil, { signed_headers = "content-type;host;x-tc-action" }))
    end)

    it("accepts a charset in the signed content type", function()
      assert.is_nil(code(nil, { content_type = "application/json; charset=utf-8" }))
    end)

    it("rejects a wrong key with AuthFailure.SignatureFailure", function()
      assert.equal("AuthFailure.SignatureFailure", code(nil, { secret_key = emu.secret_key .. "x" }))
      assert.equal(1, emu:counters().auth_failures)
    end)

    it("rejects a body that differs from the signed one", function()
      local body = cjson.encode(DOC_BATCH)
      local status, _, doc = emu:call("DescribeBatchProduction", nil, { body = body,
        headers = { Authorization = emulator.authorization({ secret_id = emu.secret_id,
          secret_key = emu.secret_key, timestamp = os.time(), host = emu.host .. ":" .. emu.port,
          content_type = "application/json", body = body .. " " }) } })
      assert.equal(200, status)
      assert.equal("AuthFailure.SignatureFailure", err_code(doc))
    end)

    it("rejects a signed content type different from the one sent", function()
      local body = cjson.encode(DOC_BATCH)
      local ts = os.time()
      local status, _, doc = emu:call("DescribeBatchProduction", nil, { body = body, timestamp = ts,
        content_type = "application/json",
        headers = { Authorization = emulator.authorization({ secret_id = emu.secret_id,
          secret_key = emu.secret_key, timestamp = ts, host = emu.host .. ":" .. emu.port,
          content_type = "application/json; charset=utf-8", body = body }) } })
      assert.equal(200, status)
      assert.equal("AuthFailure.SignatureFailure", err_code(doc))
    end)

    it("rejects malformed or missing Authorization", function()
      assert.equal("AuthFailure.SignatureFailure", code(nil, { headers = { Authorization = "garbage" } }))
      assert.equal("AuthFailure.SignatureFailure", code(nil, { headers = { Authorization = false } }))
      assert.equal("AuthFailure.SignatureFailure", code(nil, { signed_headers = "host" }))
    end)

    it("rejects a credential date that is not the UTC date of the timestamp", function()
      assert.equal("AuthFailure.SignatureFailure", code(nil, { date = os.date("!%Y-%m-%d", os.time() - 86400 * 2) }))
    end)

    it("rejects an unknown SecretId", function()
      assert.equal("AuthFailure.SecretIdNotFound", code(nil, { secret_id = "AKIDUNKNOWN" }))
    end)

    it("rejects timestamps more than 300 s away", function()
      assert.equal("AuthFailure.SignatureExpire", code(nil, { timestamp = os.time() - 400 }))
      assert.equal("AuthFailure.SignatureExpire", code(nil, { timestamp = os.time() + 400 }))
      assert.is_nil(code(nil, { timestamp = os.time() - 200 }))
    end)

    it("applies the configured clock skew to expiry and the Date header", function()
      emu:set({ clock_skew = 3600 })
      local _, headers, doc = emu:call("DescribeBatchProduction", DOC_BATCH)
      assert.equal("AuthFailure.SignatureExpire", err_code(doc))
      -- The Date header shows the skewed clock, so a client can correct itself.
      local d, mon, y, hh, mm, ss = headers.date:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
      local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
        Oct = 10, Nov = 11, Dec = 12 }
      local now = os.time()
      local utc_offset = os.time(os.date("!*t", now)) - now
      local server = os.time({ year = tonumber(y), month = months[mon], day = tonumber(d),
        hour = tonumber(hh), min = tonumber(mm), sec = tonumber(ss) }) - utc_offset
      assert.is_true(math.abs(server - now - 3600) <= 2, "Date header " .. headers.date)
      assert.is_nil(code(nil, { timestamp = os.time() + 3600 }))
    end)

    it("requires the token of temporary credentials", function()
      local tmp = { secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key }
      assert.equal("AuthFailure.TokenFailure", code(nil, tmp))
      tmp.token = "wrong"
      assert.equal("AuthFailure.TokenFailure", code(nil, tmp))
      tmp.token = emu.tmp_token
      assert.is_nil(code(nil, tmp))
      assert.equal("AuthFailure.TokenFailure", code(nil, { token = "unexpected" }))
    end)
  end)

  describe("common parameters", function()
    local function code(action, opts)
      local _, _, doc = emu:call(action or "DescribeBatchProduction", DOC_BATCH, opts)
      return err_code(doc)
    end

    it("requires each X-TC header", function()
      for _, h in ipairs({ "X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region" }) do
        assert.equal("MissingParameter", code(nil, { headers = { [h] = false } }), h)
      end
    end)

    it("checks version, region and action", function()
      assert.equal("NoSuchVersion", code(nil, { version = "2017-03-12" }))
      assert.equal("UnsupportedRegion", code(nil, { region = "ap-beijing" }))
      assert.is_nil(code(nil, { region = "na-ashburn" }))
      assert.equal("InvalidAction", code("DescribeBatchProductions"))
    end)

    it("rejects a body that is not a JSON object", function()
      assert.equal("InvalidParameter", code(nil, { body = "[1,2]" }))
      assert.equal("InvalidParameter", code(nil, { body = "{nope" }))
      assert.equal("InvalidParameter", code(nil, { body = "" }))
    end)
  end)

  describe("actions", function()
    local function call(action, params)
      local status, _, doc = emu:call(action, params)
      assert.equal(200, status)
      return doc.Response
    end

    it("validates DescribeBatchProduction parameters", function()
      assert.equal("MissingParameter", call("DescribeBatchProduction", { ProductId = "R32ONVL0EU" }).Error.Code)
      assert.equal("InvalidParameter",
        call("DescribeBatchProduction", { ProductId = 5, BatchProductionId = "LC-ya6zinv9" }).Error.Code)
      assert.equal("ResourceNotFound.StudioProductNotExist",
        call("DescribeBatchProduction", { ProductId = "NOPE", BatchProductionId = "LC-ya6zinv9" }).Error.Code)
      assert.equal("ResourceNotFound.BatchProductionNotExist",
        call("DescribeBatchProduction", { ProductId = "R32ONVL0EU", BatchProductionId = "LC-nope" }).Error.Code)
    end)

    it("creates batches that Describe and List agree on", function()
      local created = call("CreateBatchProduction", { ProjectId = "PROJECT0001", ProductId = "EMULPROD02",
        BurnMethod = 1, GenerationMethod = 0, BatchCnt = 7 })
      assert.is_nil(created.Error)
      assert.equal("PROJECT0001", created.ProjectId)
      assert.equal("EMULPROD02", created.ProductId)
      assert.matches("^LC%-%w%w%w%w%w%w%w%w$", created.BatchProductionId)
      local d = call("DescribeBatchProduction",
        { ProductId = "EMULPROD02", BatchProductionId = created.BatchProductionId })
      assert.equal(7, d.BatchCnt)
      assert.equal(1, d.BurnMethod)
      assert.is_true(math.abs(d.CreateTime - os.time()) <= 2)
      local list = call("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      local found
      for _, b in ipairs(list.BatchProductions) do
        if b.BatchProductionId == created.BatchProductionId then found = b end
      end
      assert.is_table(found)
      assert.equal("EMULPROD02", found.ProductId)
      assert.equal(d.CreateTime, found.CreateTime)
      assert.is_true(list.TotalCnt >= 2)
    end)

    it("validates CreateBatchProduction parameters", function()
      local base = { ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU", BurnMethod = 0, GenerationMethod = 0 }
      assert.equal("MissingParameter", call("CreateBatchProduction", base).Error.Code)   -- no BatchCnt
      base.BatchCnt = 0
      assert.equal("InvalidParameterValue", call("CreateBatchProduction", base).Error.Code)
      base.BatchCnt, base.ProductId = 2, "NOPE"
      assert.equal("ResourceNotFound.StudioProductNotExist", call("CreateBatchProduction", base).Error.Code)
      base.ProductId, base.ProjectId = "R32ONVL0EU", "OTHER"
      assert.equal("ResourceNotFound.ProjectNotExist", call("CreateBatchProduction", base).Error.Code)
      emu:add_product({ ProductId = "OTHERPROD1", ProjectId = "PROJECT0002" })
      base.ProductId, base.ProjectId = "OTHERPROD1", "PROJECT0001"
      assert.equal("UnauthorizedOperation.NoPermissionToProject", call("CreateBatchProduction", base).Error.Code)
    end)

    it("pages GetBatchProductionsList", function()
      emu:add_product({ ProductId = "PAGEPROD01", ProjectId = "PROJ-PAGE" })
      for _ = 1, 3 do
        call("CreateBatchProduction", { ProjectId = "PROJ-PAGE", ProductId = "PAGEPROD01", BurnMethod = 0,
          GenerationMethod = 0, BatchCnt = 1 })
      end
      local page = call("GetBatchProductionsList", { ProjectId = "PROJ-PAGE", Offset = 1, Limit = 1 })
      assert.equal(3, page.TotalCnt)
      assert.equal(1, #page.BatchProductions)
      emu:add_product({ ProductId = "EMPTYPROD9", ProjectId = "PROJ-EMPTY" })
      local empty_status, _, _, raw = emu:call("GetBatchProductionsList", { ProjectId = "PROJ-EMPTY" })
      assert.equal(200, empty_status)
      assert.matches('"BatchProductions":%[%]', raw)
      assert.equal("ResourceNotFound.ProjectNotExist",
        call("GetBatchProductionsList", { ProjectId = "PROJ-NONE" }).Error.Code)
      assert.equal("InvalidParameterValue",
        call("GetBatchProductionsList", { ProjectId = "PROJ-PAGE", Limit = 0 }).Error.Code)
      assert.equal("MissingParameter", call("GetBatchProductionsList", {}).Error.Code)
    end)

    it("moves Status from 0 to 3 over status_step_seconds", function()
      emu:set({ status_step_seconds = 0.15 })
      local id = call("CreateBatchProduction", { ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU",
        BurnMethod = 0, GenerationMethod = 0, BatchCnt = 4 }).BatchProductionId
      local seen, last = {}, -1
      local deadline = socket.gettime() + 3
      local d
      repeat
        d = call("DescribeBatchProduction", { ProductId = "R32ONVL0EU", BatchProductionId = id })
        assert.is_true(d.Status >= last, "status went backwards")
        last = d.Status
        seen[d.Status] = true
        if d.Status < 3 then assert.equal("", d.DownloadUrl) end
        socket.sleep(0.04)
      until d.Status == 3 or socket.gettime() > deadline
      assert.is_true(seen[0] and seen[1] and seen[3], "statuses seen: " .. cjson.encode(seen))
      assert.equal(4, d.SuccessCount)
      assert.equal("", d.LastFailedReason)
      assert.matches("/_download/", d.DownloadUrl)
    end)

    it("finishes immediately with status_step_seconds = 0", function()
      emu:set({ status_step_seconds = 0 })
      local id = call("CreateBatchProduction", { ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU",
        BurnMethod = 0, GenerationMethod = 0, BatchCnt = 2 }).BatchProductionId
      local d = call("DescribeBatchProduction", { ProductId = "R32ONVL0EU", BatchProductionId = id })
      assert.equal(3, d.Status)
      assert.equal(2, d.SuccessCount)
    end)

    it("stops a failing batch with LastFailedReason", function()
      emu:set({ status_step_seconds = 0 })
      local seeded = emu:seed({ ProductId = "R32ONVL0EU", BatchCnt = 10, fail_reason = "burn failed", fail_status = 2 })
      local id = seeded[1].BatchProductionId
      local d = call("DescribeBatchProduction", { ProductId = "R32ONVL0EU", BatchProductionId = id })
      assert.equal(2, d.Status)
      assert.equal("burn failed", d.LastFailedReason)
      assert.equal(5, d.SuccessCount)
      assert.equal("", d.DownloadUrl)
    end)
  end)

  describe("download link", function()
    local function url()
      local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH)
      return doc.Response.DownloadUrl
    end

    it("serves a CSV with one row per device", function()
      local status, headers, body = get(url())
      assert.equal(200, status)
      assert.equal("text/csv", headers["content-type"])
      local lines = {}
      for l in body:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(4, #lines)
      assert.equal("ProductId,DeviceName,DeviceSecret", lines[1])
      assert.matches("^R32ONVL0EU,[%w_]+,%w+$", lines[2])
    end)

    it("answers 403 for a tampered signature", function()
      local status, headers, body = get(url():gsub("sig=%x", "sig=z"))
      assert.equal(403, status)
      assert.equal("application/xml", headers["content-type"])
      assert.matches("<Code>AccessDenied</Code>", body)
    end)

    it("answers 403 once the link has expired", function()
      emu:set({ download_ttl = 60 })
      local link = url()
      assert.equal(200, (get(link)))
      emu:set({ clock_skew = 61 })
      local status, _, body = get(link)
      assert.equal(403, status)
      assert.matches("expired", body)
    end)
  end)

  describe("rate limit", function()
    it("answers RequestLimitExceeded beyond rate_limit per second and records the peak", function()
      emu:set({ rate_limit = 5 })
      local sock = connect(emu)
      local codes = {}
      for i = 1, 8 do
        local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH, { sock = sock, keep = true })
        codes[i] = err_code(doc) or "ok"
      end
      sock:close()
      assert.same({ "ok", "ok", "ok", "ok", "ok", "RequestLimitExceeded", "RequestLimitExceeded",
        "RequestLimitExceeded" }, codes)
      local c = emu:counters()
      assert.equal(3, c.rate_limited)
      assert.equal(8, c.max_per_second)
      -- The window slides: after a second the same id is served again.
      socket.sleep(1.05)
      local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH)
      assert.is_nil(err_code(doc))
    end)

    it("counts each secret id separately", function()
      emu:set({ rate_limit = 1 })
      local _, _, a = emu:call("DescribeBatchProduction", DOC_BATCH)
      local _, _, b = emu:call("DescribeBatchProduction", DOC_BATCH,
        { secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key, token = emu.tmp_token })
      assert.is_nil(err_code(a))
      assert.is_nil(err_code(b))
    end)
  end)

  describe("faults", function()
    local function describe_call(opts)
      return emu:call("DescribeBatchProduction", DOC_BATCH, opts)
    end

    it("injects HTTP status codes for `count` requests", function()
      emu:fault({ kind = "status", status = 503, count = 2 })
      assert.equal(503, (describe_call()))
      assert.equal(503, (describe_call()))
      assert.equal(200, (describe_call()))
    end)

    it("injects API error envelopes", function()
      emu:fault({ kind = "error", code = "InternalError", count = 1 })
      local status, _, doc = describe_call()
      assert.equal(200, status)
      assert.equal("InternalError", err_code(doc))
      assert.matches("%x+%-", doc.Response.RequestId)
    end)

    it("targets one action when asked", function()
      emu:fault({ kind = "error", code = "InternalError", action = "GetBatchProductionsList" })
      local _, _, d = describe_call()
      assert.is_nil(err_code(d))
      local _, _, l = emu:call("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      assert.equal("InternalError", err_code(l))
    end)

    it("resets the connection before answering", function()
      emu:fault({ kind = "reset" })
      local sock = connect(emu)
      send_signed(emu, sock)
      local data, err, partial = sock:receive(1)
      sock:close()
      assert.is_nil(data)
      assert.equal("", partial)
      assert.matches("^c[lo][on]", err)   -- "closed" or "connection reset by peer"
    end)

    it("resets the connection after the headers", function()
      emu:fault({ kind = "reset", when = "headers" })
      local sock = connect(emu)
      send_signed(emu, sock)
      local status, err, partial, st, headers = emulator.read_response(sock)
      sock:close()
      assert.is_nil(status)
      assert.is_string(err)
      assert.equal("", partial)
      assert.equal(200, st)
      assert.is_true(tonumber(headers["content-length"]) > 0)
      -- The fault is used up: the next request succeeds.
      assert.equal(200, (describe_call()))
    end)

    it("truncates the body under a larger Content-Length", function()
      emu:fault({ kind = "truncate" })
      local sock = connect(emu)
      send_signed(emu, sock)
      local status, err, partial, st, headers = emulator.read_response(sock)
      sock:close()
      assert.is_nil(status)
      assert.equal("closed", err)
      assert.equal(200, st)
      assert.is_true(#partial > 0 and #partial < tonumber(headers["content-length"]))
    end)

    it("sends malformed JSON", function()
      emu:fault({ kind = "malformed_json" })
      local status, headers, doc, raw = describe_call()
      assert.equal(200, status)
      assert.equal("application/json", headers["content-type"])
      assert.is_nil(doc)
      assert.is_true(#raw > 0)
    end)

    it("sends proxy-style HTML pages", function()
      emu:fault({ kind = "html", status = 502 })
      local status, headers, doc, raw = describe_call()
      assert.equal(502, status)
      assert.equal("text/html", headers["content-type"])
      assert.is_nil(doc)
      assert.matches("<html>", raw)
      emu:fault({ kind = "html", status = 200 })
      status = describe_call()
      assert.equal(200, status)
    end)

    it("sends raw responses", function()
      emu:fault({ kind = "raw", status = 302, headers = { Location = "http://127.0.0.1:1/elsewhere" }, body = "" })
      local status, headers, _, raw = describe_call()
      assert.equal(302, status)
      assert.equal("http://127.0.0.1:1/elsewhere", headers.location)
      assert.equal("", raw)
      emu:fault({ kind = "raw", status = 200, headers = { ["Content-Type"] = "application/json" },
        body = '{"Response":{}}' })
      local _, _, doc = describe_call()
      assert.same({ Response = {} }, doc)
      emu:fault({ kind = "raw", body_hex = '7b22526573706f6e7365223a7b22526571756573744964223a22ff'
        .. 'fe227d7d' })
      local _, _, _, bytes = describe_call()
      assert.equal('{"Response":{"RequestId":"\255\254"}}', bytes)
    end)

    it("sends a big body of exactly N bytes", function()
      emu:fault({ kind = "big", bytes = 1024 * 1024 })
      local status, _, doc, raw = describe_call()
      assert.equal(200, status)
      assert.equal(1024 * 1024, #raw)
      assert.is_string(doc.Response.RequestId)
    end)

    it("delays a response", function()
      emu:fault({ kind = "delay", seconds = 0.3 })
      local t0 = socket.gettime()
      local status = describe_call()
      assert.equal(200, status)
      assert.is_true(socket.gettime() - t0 >= 0.28)
    end)

    it("does not apply faults to the control endpoint, and reset clears them", function()
      emu:fault({ kind = "status", status = 500, count = 5 })
      local c = emu:counters()   -- would raise on a non-200 answer
      assert.equal(0, c.requests)
      emu:reset()
      assert.equal(200, (describe_call()))
    end)

    it("rejects unknown fault kinds", function()
      assert.has_error(function() emu:fault({ kind = "nope" }) end)
    end)
  end)

  describe("counters", function()
    it("counts requests per action, auth failures and the last headers", function()
      local before = emu:counters().connections
      emu:call("DescribeBatchProduction", DOC_BATCH, { headers = { ["X-TC-RequestClient"] = "spec/1.0" } })
      emu:call("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      emu:call("DescribeBatchProduction", DOC_BATCH, { secret_id = "AKIDUNKNOWN" })
      local c = emu:counters()
      assert.equal(3, c.requests)
      assert.equal(2, c.by_action.DescribeBatchProduction)
      assert.equal(1, c.by_action.GetBatchProductionsList)
      assert.equal(1, c.auth_failures)
      assert.equal(before + 4, c.connections)   -- three calls and this counters call
      assert.equal("DescribeBatchProduction", c.last_headers["x-tc-action"])
      assert.matches("AKIDUNKNOWN", c.last_headers.authorization)
      emu:reset()
      c = emu:counters()
      assert.equal(0, c.requests)
      assert.same({}, c.by_action)
      assert.equal(0, c.auth_failures)
    end)
  end)
end)

describe("emulator fixture", function()
  it("loads credentials, products and failing batches from a fixture", function()
    local emu = emulator.start({ fixture = {
      defaults = false,
      credentials = { { secret_id = "AKIDFIXTURE", secret_key = "fixture-key" } },
      products = { { ProductId = "FIXPROD001", ProjectId = "FIXPROJ", ProductName = "fixture product",
        fail_reason = "quota exceeded" } },
      batches = { { BatchProductionId = "LC-fixture1", ProductId = "FIXPROD001", BatchCnt = 2, Status = 1 } },
      status_step_seconds = 0, rate_limit = 50,
    } })
    local ok, err = pcall(function()
      assert.equal("AKIDFIXTURE", emu.secret_id)
      local _, _, d = emu:call("DescribeBatchProduction",
        { ProductId = "FIXPROD001", BatchProductionId = "LC-fixture1" })
      assert.equal(1, d.Response.Status)
      assert.equal(2, d.Response.BatchCnt)
      local _, _, gone = emu:call("DescribeBatchProduction", DOC_BATCH)
      assert.equal("ResourceNotFound.StudioProductNotExist", err_code(gone))
      local _, _, created = emu:call("CreateBatchProduction", { ProjectId = "FIXPROJ", ProductId = "FIXPROD001",
        BurnMethod = 0, GenerationMethod = 0, BatchCnt = 4 })
      local _, _, f = emu:call("DescribeBatchProduction",
        { ProductId = "FIXPROD001", BatchProductionId = created.Response.BatchProductionId })
      assert.equal(1, f.Response.Status)
      assert.equal("quota exceeded", f.Response.LastFailedReason)
      assert.equal(50, emu:config().rate_limit)
    end)
    local pid = emu.pid
    emu:stop()
    assert(ok, err)
    socket.sleep(0.2)
    local state = util.proc_state(pid)
    assert.is_true(state == nil or state == "Z", "emulator still running after stop()")
  end)

  it("fails clearly when the emulator cannot start", function()
    local ok, err = pcall(emulator.start, { fixture = { batches = { { ProductId = "UNKNOWN" } } }, timeout = 5 })
    assert.is_false(ok)
    assert.matches("emulator exited", err)
    assert.matches("unknown ProductId UNKNOWN", err)
  end)
end)

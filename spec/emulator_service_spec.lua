-- The emulator answers as the service does (ACTIONS.md): the host it signs, the per-action rate windows,
-- the parameter errors from the action tables, GET with a signed query, the list's item fields, every
-- documented error code, DescribeDevice, and what it survives and counts under concurrency.
local socket = require("socket")
local cjson = require("cjson.safe")
local emulator = require("helpers.emulator")
local with = emulator.with
local actions = require("tencentcloud.iotexplorer.actions")

local DOC_BATCH = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local CREATE = { ProjectId = "PROJECT0001", ProductId = "R32ONVL0EU", BurnMethod = 0, GenerationMethod = 0,
  BatchCnt = 2 }

local function err_code(doc)
  return doc and doc.Response and doc.Response.Error and doc.Response.Error.Code
end

describe("emulator as the service", function()
  local h = emulator.hooks({ rate_limit = 20, status_step_seconds = 0, delay_ms = 0, clock_skew = 0 })
  local emu

  lazy_setup(function() emu = h.setup() end)
  lazy_teardown(h.teardown)
  before_each(h.before_each)

  local function code(action, params, opts)
    local status, _, doc = emu:call(action, params, opts)
    assert.equal(200, status)
    return err_code(doc), doc and doc.Response
  end

  describe("the signed host", function()
    it("accepts a signature over the host without its port, as the Node SDK signs it", function()
      assert.is_nil(code("DescribeBatchProduction", DOC_BATCH, { sign_host = emu.host }))
      assert.is_nil(code("DescribeBatchProduction", DOC_BATCH))
    end)

    it("still refuses a signature over another host", function()
      assert.equal("AuthFailure.SignatureFailure",
        code("DescribeBatchProduction", DOC_BATCH, { sign_host = "iotexplorer.tencentcloudapi.com" }))
      assert.equal("AuthFailure.SignatureFailure",
        code("DescribeBatchProduction", DOC_BATCH, { sign_host = emu.host .. ":1" }))
    end)
  end)

  describe("rate limit", function()
    it("keeps one strict sliding second per action and SecretId", function()
      emu:set({ rate_limit = 5 })
      local sock = assert(socket.connect(emu.host, emu.port))
      local function run(action, params)
        local _, _, doc = emu:call(action, params, { sock = sock, keep = true })
        return err_code(doc) or "ok"
      end
      local got = {}
      for i = 1, 5 do got[#got + 1] = run("DescribeBatchProduction", DOC_BATCH) .. i end
      -- Another action has its own window: five more are served within the same second.
      for i = 1, 5 do got[#got + 1] = run("GetBatchProductionsList", { ProjectId = "PROJECT0001" }) .. i end
      got[#got + 1] = run("DescribeBatchProduction", DOC_BATCH)
      got[#got + 1] = run("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      sock:close()
      assert.same({ "ok1", "ok2", "ok3", "ok4", "ok5", "ok1", "ok2", "ok3", "ok4", "ok5",
        "RequestLimitExceeded", "RequestLimitExceeded" }, got)
      local c = emu:counters()
      assert.equal(6, c.max_per_second_by_action.DescribeBatchProduction)
      assert.equal(6, c.max_per_second_by_action.GetBatchProductionsList)
      assert.equal(6, c.max_per_second)
      assert.equal(2, c.rate_limited)
    end)

    it("refuses the 21st request of one action within a second by default", function()
      local sock = assert(socket.connect(emu.host, emu.port))
      local refused = 0
      for _ = 1, 21 do
        local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH, { sock = sock, keep = true })
        if err_code(doc) == "RequestLimitExceeded" then refused = refused + 1 end
      end
      sock:close()
      -- 21 requests on one connection take well under a second here; on a stalled machine fewer share one.
      local c = emu:counters()
      assert.is_true(c.max_per_second_by_action.DescribeBatchProduction <= 21)
      assert.equal(math.max(0, c.max_per_second_by_action.DescribeBatchProduction - 20), refused)
    end)
  end)

  describe("parameters, from the action tables", function()
    it("answers UnknownParameter, MissingParameter, InvalidParameter and InvalidParameterValue", function()
      assert.equal("UnknownParameter", code("DescribeBatchProduction", with(DOC_BATCH, { FutureFlag = 1 })))
      assert.equal("MissingParameter", code("DescribeBatchProduction", with(DOC_BATCH, { ProductId = false })))
      assert.equal("InvalidParameter", code("DescribeBatchProduction", with(DOC_BATCH, { ProductId = 7 })))
      assert.equal("InvalidParameter", code("CreateBatchProduction", with(CREATE, { BatchCnt = "3" })))
      assert.equal("InvalidParameterValue", code("CreateBatchProduction", with(CREATE, { BurnMethod = 2 })))
      assert.equal("InvalidParameterValue", code("CreateBatchProduction", with(CREATE, { BatchCnt = 0 })))
      assert.equal("InvalidParameterValue", code("GetBatchProductionsList", { ProjectId = "PROJECT0001", Offset = -1 }))
    end)

    it("takes GenerationQRCode as the Integer 0 or 1", function()
      assert.is_nil(code("CreateBatchProduction", with(CREATE, { GenerationQRCode = 1 })))
      assert.is_nil(code("CreateBatchProduction", with(CREATE, { GenerationQRCode = 0 })))
      assert.equal("InvalidParameter", code("CreateBatchProduction", with(CREATE, { GenerationQRCode = true })))
      assert.equal("InvalidParameterValue", code("CreateBatchProduction", with(CREATE, { GenerationQRCode = 2 })))
    end)

    it("requires BatchCnt when GenerationMethod is 0 and UploadUrl when it is 1", function()
      local c, r = code("CreateBatchProduction", with(CREATE, { BatchCnt = false }))
      assert.equal("MissingParameter", c)
      assert.matches("BatchCnt", r.Error.Message)
      c, r = code("CreateBatchProduction", with(CREATE, { BatchCnt = false, GenerationMethod = 1 }))
      assert.equal("MissingParameter", c)
      assert.matches("UploadUrl", r.Error.Message)
      assert.is_nil(code("CreateBatchProduction", with(CREATE, { BatchCnt = false, GenerationMethod = 1,
        UploadUrl = "https://example.com/names.csv" })))
    end)

    it("answers ResourceNotFound.ProjectNotExist for a project it does not have", function()
      assert.equal("ResourceNotFound.ProjectNotExist",
        code("CreateBatchProduction", with(CREATE, { ProjectId = "NOPE" })))
      assert.equal("ResourceNotFound.ProjectNotExist", code("GetBatchProductionsList", { ProjectId = "NOPE" }))
    end)
  end)

  describe("GET with a signed query string", function()
    it("reads the query's strings as the action's types", function()
      local c, r = code("DescribeBatchProduction", DOC_BATCH, { method = "GET" })
      assert.is_nil(c)
      assert.equal(3, r.BatchCnt)
      c, r = code("GetBatchProductionsList", { ProjectId = "PROJECT0001", Offset = 0, Limit = 1 }, { method = "GET" })
      assert.is_nil(c)
      assert.equal(1, #r.BatchProductions)
      assert.equal("InvalidParameter", code("GetBatchProductionsList", { ProjectId = "PROJECT0001", Limit = "x" },
        { method = "GET" }))
      assert.equal("UnknownParameter", code("GetBatchProductionsList", { ProjectId = "PROJECT0001", Nope = "1" },
        { method = "GET" }))
    end)

    it("refuses a query over 32 KB with RequestSizeLimitExceeded", function()
      assert.equal("RequestSizeLimitExceeded", code("GetBatchProductionsList",
        { ProjectId = string.rep("P", 33 * 1024) }, { method = "GET" }))
      assert.equal("ResourceNotFound.ProjectNotExist", code("GetBatchProductionsList",
        { ProjectId = string.rep("P", 30 * 1024) }, { method = "GET" }))
    end)

    it("verifies the signature over the query and refuses a JSON content type", function()
      local status, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH, { method = "GET",
        headers = { Authorization = emulator.authorization({ secret_id = emu.secret_id, secret_key = emu.secret_key,
          timestamp = os.time(), host = emu.host .. ":" .. emu.port, method = "GET",
          content_type = "application/x-www-form-urlencoded", query = "ProductId=OTHER" }) } })
      assert.equal(200, status)
      assert.equal("AuthFailure.SignatureFailure", err_code(doc))
      assert.equal("InvalidParameter", code("DescribeBatchProduction", DOC_BATCH,
        { method = "GET", content_type = "application/json" }))
    end)
  end)

  describe("GetBatchProductionsList", function()
    it("answers items with exactly BatchProductionInfo's fields", function()
      local c, r = code("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      assert.is_nil(c)
      assert.is_true(#r.BatchProductions >= 1)
      for _, item in ipairs(r.BatchProductions) do
        local names = {}
        for k, v in pairs(item) do
          names[#names + 1] = k
          assert.equal(actions.by_name.GetBatchProductionsList.item_fields[k] == "String" and "string" or "number",
            type(v), k)
        end
        table.sort(names)
        assert.same({ "BatchProductionId", "BurnMethod", "CreateTime", "ProductId", "ProductName" }, names)
      end
    end)

    it("can answer BatchProductions null or absent", function()
      emu:fault({ kind = "field", action = "GetBatchProductionsList", field = "BatchProductions", value = cjson.null })
      local _, _, _, raw = emu:call("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      assert.matches('"BatchProductions":null', raw)
      emu:fault({ kind = "field", action = "GetBatchProductionsList", field = "BatchProductions" })
      local _, _, doc, raw2 = emu:call("GetBatchProductionsList", { ProjectId = "PROJECT0001" })
      assert.is_nil(raw2:find("BatchProductions", 1, true))
      assert.is_number(doc.Response.TotalCnt)
    end)
  end)

  describe("documented errors", function()
    local VALID = {
      DescribeBatchProduction = DOC_BATCH, CreateBatchProduction = CREATE,
      GetBatchProductionsList = { ProjectId = "PROJECT0001" },
      DescribeDevice = { ProductId = "R32ONVL0EU", DeviceName = "LCya6zinv9_0001" },
    }

    it("injects every error code each action documents", function()
      emu:set({ rate_limit = 0 })
      local sock = assert(socket.connect(emu.host, emu.port))
      local n = 0
      for _, a in ipairs(actions.list) do
        for _, wanted in ipairs(a.errors) do
          emu:fault({ kind = "error", action = a.name, code = wanted })
          local _, _, doc = emu:call(a.name, VALID[a.name], { sock = sock, keep = true })
          assert.equal(wanted, err_code(doc), a.name)
          assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", doc.Response.RequestId)
          n = n + 1
        end
      end
      sock:close()
      assert.is_true(n >= 40)
      assert.same(actions.by_name.DescribeDevice.errors[1], emu:control("GET", "errors").DescribeDevice[1])
    end)

    it("refuses to inject a code the action does not document, suggesting the near one", function()
      local ok, err = pcall(emu.fault, emu, { kind = "error", action = "DescribeBatchProduction",
        code = "InternalError.DBOperationError" })
      assert.is_false(ok)
      assert.matches("did you mean InternalError.DBOpertaionError", err)
    end)
  end)

  describe("DescribeDevice", function()
    it("answers for every device of a finished batch, with its file's secret", function()
      local _, created = code("CreateBatchProduction", with(CREATE, { BatchCnt = 3 }))
      local _, d = code("DescribeBatchProduction", { ProductId = "R32ONVL0EU",
        BatchProductionId = created.BatchProductionId })
      local host, port, path = d.DownloadUrl:match("^http://([^:/]+):(%d+)(/.*)$")
      local status, _, csv = emulator.http(host, tonumber(port), { method = "GET", path = path })
      assert.equal(200, status)
      local rows = 0
      for product, name, secret in csv:gmatch("\n([^,\n]+),([^,\n]+),([^,\n]+)") do
        rows = rows + 1
        local c, r = code("DescribeDevice", { ProductId = product, DeviceName = name })
        assert.is_nil(c)
        local dev = r.Device
        assert.equal(name, dev.DeviceName)
        assert.equal(secret, dev.DevicePsk)
        assert.equal(product, dev.ProductId)
        assert.equal("emulator-sample-product", dev.ProductName)
        for field, ty in pairs({ Status = "number", LoginTime = "number", CreateTime = "number",
          Version = "string", DeviceCert = "string", LogLevel = "number", EnableState = "number",
          DeviceType = "string", IsLora = "boolean" }) do
          assert.equal(ty, type(dev[field]), field)
        end
        local c2, r2 = code("DescribeDevice", { DeviceId = product .. "/" .. name })
        assert.is_nil(c2)
        assert.equal(name, r2.Device.DeviceName)
      end
      assert.equal(3, rows)
    end)

    it("answers ResourceNotFound.DeviceNotExist for a device it did not produce", function()
      assert.equal("ResourceNotFound.DeviceNotExist", code("DescribeDevice", { ProductId = "R32ONVL0EU",
        DeviceName = "LCya6zinv9_0004" }))
      assert.equal("ResourceNotFound.DeviceNotExist", code("DescribeDevice", { ProductId = "R32ONVL0EU",
        DeviceName = "nobody" }))
      emu:set({ status_step_seconds = 60 })
      local _, created = code("CreateBatchProduction", CREATE)
      local unfinished = created.BatchProductionId:gsub("[^%w]", "") .. "_0001"
      assert.equal("ResourceNotFound.DeviceNotExist", code("DescribeDevice", { ProductId = "R32ONVL0EU",
        DeviceName = unfinished }))
      assert.equal("MissingParameter", code("DescribeDevice", { ProductId = "R32ONVL0EU" }))
    end)
  end)

  describe("concurrency", function()
    -- Writes a signed request on each of n connections before reading any answer.
    local function concurrent(n)
      local socks = {}
      for i = 1, n do socks[i] = emu:connect() end
      local t0 = socket.gettime()
      for i = 1, n do emu:send_signed(socks[i]) end
      local statuses = {}
      for i = 1, n do
        statuses[i] = emulator.read_response(socks[i])
        socks[i]:close()
      end
      return statuses, socket.gettime() - t0
    end

    it("delays every answer by delay_ms and counts the requests in flight", function()
      emu:set({ delay_ms = 400 })
      local statuses, took = concurrent(5)
      assert.same({ 200, 200, 200, 200, 200 }, statuses)
      -- Five answers delayed together, not one after another.
      assert.is_true(took >= 0.38 and took < 1.9, "took " .. took)
      local c = emu:counters()
      assert.equal(5, c.max_in_flight)
      assert.equal(0, c.in_flight)
      assert.equal(400, emu:config().delay_ms)
    end)

    it("survives 2,000 connections open at once and answers each", function()
      local big = emulator.start({ fixture = { rate_limit = 0 } })
      local ok, err = pcall(function()
        local result = assert(big:flood(2000))
        assert.same({ ok = 2000, failed = 0 }, result)
        local c = big:counters()
        assert.equal(2000, c.requests)
        assert.equal(2001, c.connections)   -- and this counters request
        assert.is_nil(err_code(select(3, big:call("DescribeBatchProduction", DOC_BATCH))))
        assert.is_true(c.max_open_connections <= 900, "open at once: " .. c.max_open_connections)
      end)
      big:stop()
      assert(ok, err)
    end)

    it("holds at most --max-connections open, closing idle kept-alive ones to make room", function()
      local small = emulator.start({ fixture = { rate_limit = 0 }, args = { "--max-connections", "20" } })
      local ok, err = pcall(function()
        assert.same({ ok = 300, failed = 0 }, assert(small:flood(300)))
        local c = small:counters()
        assert.equal(300, c.requests)
        assert.is_true(c.max_open_connections <= 20, "open at once: " .. c.max_open_connections)
      end)
      small:stop()
      assert(ok, err)
    end)
  end)
end)

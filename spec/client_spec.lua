-- The client against the local API emulator: results, input checks, the pager,
-- logging, close, and that no secret ever shows.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local util = require("helpers.util")
local leaks = require("helpers.leaks")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }

describe("client", function()
  local emu, seen, client

  local function new(o)
    o = o or {}
    o.region = o.region or "ap-guangzhou"
    o.endpoint = o.endpoint or emu.url
    if o.secret_id == nil and o.credential_provider == nil then
      o.secret_id, o.secret_key = emu.secret_id, emu.secret_key
    end
    o.logger = o.logger or seen:logger()
    o.backoff_base = o.backoff_base or 0.01
    o.metadata_endpoint = false
    local c, err = iot.new(o)
    seen:see(c, err)
    return c, err
  end

  local function requests()
    return emu:counters().requests
  end

  setup(function()
    emu = emulator.start()
    seen = leaks.new()
    client = assert(new())
  end)

  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:reset()
  end)

  describe("results", function()
    it("returns the Response table as sent, with RequestId and unknown fields", function()
      local res, err = client:describe_batch_production(DESCRIBE)
      seen:see(res, err)
      assert.is_nil(err)
      assert.equal(3, res.BatchCnt)
      assert.equal(0, res.BurnMethod)
      assert.equal(1572233486, res.CreateTime)
      assert.equal(0, res.GenerationMethod)
      assert.equal("", res.UploadUrl)
      assert.matches("^http://127%.0%.0%.1:%d+/_download/R32ONVL0EU_LC%-ya6zinv9%.csv", res.DownloadUrl)
      assert.equal(3, res.Status)        -- fields newer than the original documentation pass through
      assert.equal(3, res.SuccessCount)
      assert.is_string(res.RequestId)
      if math.type then assert.equal("integer", math.type(res.BatchCnt)) end
      assert.equal(1, emu:counters().by_action.DescribeBatchProduction)
    end)

    it("sends extra DescribeBatchProduction parameters through the generic call", function()
      local res, err = client:describe_batch_production{
        ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9", FutureFlag = true }
      seen:see(res, err)
      assert.is_nil(err)
      assert.equal(3, res.BatchCnt)
      assert.equal(1, requests())
    end)

    it("creates, lists and describes batches consistently", function()
      local created, err = client:create_batch_production{
        ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0, BatchCnt = 10 }
      seen:see(created, err)
      assert.is_nil(err)
      assert.equal("EMULPROD02", created.ProductId)
      assert.matches("^LC%-", created.BatchProductionId)
      local list = assert(client:get_batch_productions_list{ ProjectId = "PROJECT0001", Offset = 0, Limit = 100 })
      local found
      for _, b in ipairs(list.BatchProductions) do
        if b.BatchProductionId == created.BatchProductionId then found = b end
      end
      assert.is_table(found)
      assert.equal(10, found.BatchCnt)
      local d = assert(client:describe_batch_production{
        ProductId = "EMULPROD02", BatchProductionId = created.BatchProductionId })
      assert.equal(10, d.BatchCnt)
    end)

    it("calls any action with call(), and reports what the service says", function()
      local res = assert(client:call("DescribeBatchProduction", DESCRIBE))
      assert.equal(3, res.BatchCnt)
      local _, err = client:call("DescribeNothingAtAll", {})
      seen:see(err)
      assert.equal("InvalidAction", err.code)
      assert.is_string(err.request_id)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
    end)

    it("returns API errors as error objects", function()
      local res, err = client:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-nope" }
      seen:see(res, err)
      assert.is_nil(res)
      assert.is_true(iot.is_error(err))
      assert.equal("ResourceNotFound.BatchProductionNotExist", err.code)
      assert.equal(err.code .. ": " .. err.message .. " (RequestId: " .. err.request_id .. ")", tostring(err))
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
    end)

    it("has a version", function()
      assert.is_string(iot._VERSION)
      assert.equal(core._VERSION, iot._VERSION)
    end)
  end)

  describe("input checks (before any I/O)", function()
    local function refused(field, c, method, ...)
      local res, err = c[method](c, ...)
      seen:see(res, err)
      assert.is_nil(res)
      assert.is_true(iot.is_error(err), method)
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal(field, err.field)
      assert.equal(0, err.attempts)
      assert.is_false(err.retryable)
    end

    after_each(function()
      assert.equal(0, requests())
    end)

    it("iot.new checks its options and never raises", function()
      local cases = {
        { "options", "nope" },
        { "region", { region = "AP_Guangzhou" } },
        { "region", { region = "" } },
        { "region", { region = 5 } },
        { "endpoint", { endpoint = "ftp://x" } },
        { "endpoint", { endpoint = "iotexplorer.tencentcloudapi.com" } },
        { "timeout", { timeout = 0 } },
        { "timeout", { timeout = -1 } },
        { "timeout", { timeout = "10" } },
        { "timeout", { timeout = 1e9 } },
        { "connect_timeout", { connect_timeout = 0 / 0 } },
        { "max_attempts", { max_attempts = 0 } },
        { "max_attempts", { max_attempts = 1.5 } },
        { "rate_limit", { rate_limit = 0 } },
        { "rate_limit", { rate_limit = true } },
        { "rate_limit_store", { rate_limit_store = {} } },
        { "language", { language = "fr-FR" } },
        { "logger", { logger = "print" } },
        { "sleep", { sleep = 1 } },
        { "backoff_base", { backoff_base = 0 } },
        { "proxy", { proxy = "" } },
        { "secretId", { secretId = "typo" } },
      }
      for _, case in ipairs(cases) do
        local o = case[2]
        if type(o) == "table" then
          o.region = o.region or "ap-guangzhou"
          o.secret_id, o.secret_key = "AKID", emu.secret_key
        end
        local ok, c, err = pcall(iot.new, o)
        seen:see(err)
        assert.is_true(ok, case[1])
        assert.is_nil(c, case[1])
        assert.equal("ClientError.InvalidParameter", err.code, case[1])
        assert.equal(case[1], err.field)
      end
    end)

    it("iot.new refuses missing or broken credentials", function()
      local c, err = iot.new{ region = "ap-guangzhou", secret_id = "AKID", metadata_endpoint = false }
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      c, err = iot.new{ region = "ap-guangzhou", secret_id = "AKID", secret_key = emu.secret_key .. " ",
        metadata_endpoint = false }
      seen:see(err)
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("whitespace", err.message)
    end)

    it("checks DescribeBatchProduction parameters", function()
      refused("params", client, "describe_batch_production", "R32ONVL0EU")
      refused("ProductId", client, "describe_batch_production", {})
      refused("ProductId", client, "describe_batch_production", { ProductId = 5, BatchProductionId = "LC-1" })
      refused("ProductId", client, "describe_batch_production", { ProductId = "", BatchProductionId = "LC-1" })
      refused("BatchProductionId", client, "describe_batch_production", { ProductId = "P" })
      refused("BatchProductionId", client, "describe_batch_production", { ProductId = "P", BatchProductionId = "a\nb" })
      refused("timeout", client, "describe_batch_production", DESCRIBE, { timeout = 0 })
      refused("deadline", client, "describe_batch_production", DESCRIBE, { deadline = "5" })
      refused("retries", client, "describe_batch_production", DESCRIBE, { retries = 5 })
      refused("opts", client, "describe_batch_production", DESCRIBE, 5)
    end)

    it("checks CreateBatchProduction parameters", function()
      local ok = { ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0 }
      local function with(k, v)
        local t = {}
        for a, b in pairs(ok) do t[a] = b end
        t[k] = v
        return t
      end
      refused("ProjectId", client, "create_batch_production", with("ProjectId", nil))
      refused("ProductId", client, "create_batch_production", with("ProductId", 1))
      refused("BurnMethod", client, "create_batch_production", with("BurnMethod", 2))
      refused("BurnMethod", client, "create_batch_production", with("BurnMethod", nil))
      refused("GenerationMethod", client, "create_batch_production", with("GenerationMethod", 0.5))
      refused("BatchCnt", client, "create_batch_production", with("BatchCnt", 0))
      refused("BatchCnt", client, "create_batch_production", with("BatchCnt", "10"))
      refused("GenerationQRCode", client, "create_batch_production", with("GenerationQRCode", "yes"))
      refused("UploadUrl", client, "create_batch_production", with("GenerationMethod", 1))
    end)

    it("checks GetBatchProductionsList parameters and the pager's", function()
      refused("ProjectId", client, "get_batch_productions_list", {})
      refused("Offset", client, "get_batch_productions_list", { ProjectId = "P", Offset = -1 })
      refused("Limit", client, "get_batch_productions_list", { ProjectId = "P", Limit = 0 })
      local items = {}
      for item, err in client:each_batch_production{ Limit = 5 } do
        items[#items + 1] = { item, err }
      end
      assert.equal(1, #items)
      assert.is_false(items[1][1])
      assert.equal("ProjectId", items[1][2].field)
    end)

    it("checks the action name of call()", function()
      refused("action", client, "call", "describeBatchProduction", {})
      refused("action", client, "call", "Describe Batch", {})
      refused("action", client, "call", nil, {})
      refused("params", client, "call", "DescribeBatchProduction", "x")
    end)

    it("refuses a region where batch production does not exist", function()
      local c = assert(new{ region = "ap-beijing" })
      refused("region", c, "describe_batch_production", DESCRIBE)
      refused("region", c, "create_batch_production", { ProjectId = "P", ProductId = "Q", BurnMethod = 0,
        GenerationMethod = 0 })
      refused("region", c, "get_batch_productions_list", { ProjectId = "P" })
      c:close()
    end)

    it("survives methods called with a dot instead of a colon", function()
      local ok, res, err = pcall(client.describe_batch_production, DESCRIBE)
      assert.is_true(ok)
      assert.is_nil(res)
      assert.equal("ClientError.InvalidParameter", err.code)
    end)
  end)

  describe("region", function()
    it("comes from TENCENTCLOUD_REGION when not given", function()
      local script = string.format([[
        package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
        package.cpath = "build/%s/?.so;" .. package.cpath
        local iot = require("tencentcloud.iotexplorer")
        local c, err = iot.new{ secret_id = "AKID", secret_key = "K", metadata_endpoint = false }
        io.write(c and c.region or tostring(err))
      ]], util.FLAVOUR)
      local function run(env)
        local _, out = util.run("env -i PATH=\"$PATH\" " .. env .. " " .. util.INTERPRETER .. " -e '" .. script .. "'")
        return out
      end
      assert.equal("eu-frankfurt", run("TENCENTCLOUD_REGION=eu-frankfurt"))
      assert.matches("^ClientError.InvalidParameter: region is required", run(""))
    end)
  end)

  describe("pager", function()
    local ids = {}

    setup(function()
      emu:add_product{ ProductId = "PAGERPROD1", ProjectId = "PAGERPROJECT" }
      local batches = {}
      for i = 1, 45 do
        batches[i] = { ProductId = "PAGERPROD1", BatchProductionId = string.format("LC-page%03d", i), BatchCnt = i,
          Status = 3 }
      end
      for _, b in ipairs(emu:seed(batches)) do ids[b.BatchProductionId] = true end
    end)

    it("walks every page once", function()
      local got, n = {}, 0
      for item, err in client:each_batch_production{ ProjectId = "PAGERPROJECT", Limit = 20 } do
        assert.is_nil(err)
        assert.is_table(item)
        assert.is_nil(got[item.BatchProductionId])
        got[item.BatchProductionId] = true
        n = n + 1
      end
      assert.equal(45, n)
      for id in pairs(ids) do assert.is_true(got[id]) end
      assert.equal(3, emu:counters().by_action.GetBatchProductionsList)
    end)

    it("starts at Offset and defaults to pages of 20", function()
      local n = 0
      for _ in client:each_batch_production{ ProjectId = "PAGERPROJECT", Offset = 40 } do n = n + 1 end
      assert.equal(5, n)
      n = 0
      for _ in client:each_batch_production{ ProjectId = "PAGERPROJECT" } do n = n + 1 end
      assert.equal(45, n)
      assert.equal(1 + 3, emu:counters().by_action.GetBatchProductionsList)
    end)

    it("ends quietly on an empty project", function()
      emu:add_product{ ProductId = "EMPTYPROD1", ProjectId = "EMPTYPROJECT" }
      local n = 0
      for _ in client:each_batch_production{ ProjectId = "EMPTYPROJECT" } do n = n + 1 end
      assert.equal(0, n)
      assert.equal(1, requests())
    end)

    it("hands an error to the loop once, as false, err, then ends", function()
      emu:fault{ kind = "error", code = "UnauthorizedOperation.NoPermissionToProject", count = -1,
        action = "GetBatchProductionsList" }
      local rounds = {}
      local c = assert(new{ max_attempts = 1 })
      -- first page fine, then the fault
      local iter = c:each_batch_production{ ProjectId = "PAGERPROJECT", Limit = 20 }
      emu:reset()
      local first = iter()
      assert.is_table(first)
      emu:fault{ kind = "error", code = "UnauthorizedOperation.NoPermissionToProject", count = -1,
        action = "GetBatchProductionsList" }
      for item, err in iter do rounds[#rounds + 1] = { item, err } end
      assert.equal(20, #rounds)
      assert.is_false(rounds[20][1])
      seen:see(rounds[20][2])
      assert.equal("UnauthorizedOperation.NoPermissionToProject", rounds[20][2].code)
      assert.is_nil(iter())
      c:close()
    end)
  end)

  describe("logger", function()
    it("gets one record per attempt and never a secret", function()
      local records = {}
      local c = assert(new{ logger = function(r) records[#records + 1] = r; seen:see(r) end })
      emu:fault{ kind = "status", status = 503, count = 1 }
      assert(c:describe_batch_production(DESCRIBE))
      assert.equal(2, #records)
      local a, b = records[1], records[2]
      assert.equal("DescribeBatchProduction", a.action)
      assert.equal(1, a.attempt)
      assert.equal("error", a.status)
      assert.equal(503, a.http_status)
      assert.equal("InternalError", a.code)
      assert.is_true(a.retryable)
      assert.is_number(a.duration)
      assert.equal(2, b.attempt)
      assert.equal("ok", b.status)
      assert.is_string(b.request_id)
      assert.is_number(b.rate_wait)
      c:close()
    end)

    it("cannot break a call by raising", function()
      local c = assert(new{ logger = function() error("logger down") end })
      assert(c:describe_batch_production(DESCRIBE))
      c:close()
    end)
  end)

  describe("close", function()
    it("is idempotent, and calls afterwards return ClientError.ClientClosed", function()
      local c = assert(new())
      assert.is_true(c:close())
      assert.is_true(c:close())
      local res, err = c:describe_batch_production(DESCRIBE)
      assert.is_nil(res)
      assert.equal("ClientError.ClientClosed", err.code)
      assert.equal(0, err.attempts)
      err = select(2, c:call("DescribeBatchProduction", DESCRIBE))
      assert.equal("ClientError.ClientClosed", err.code)
      local item
      item, err = c:each_batch_production{ ProjectId = "PROJECT0001" }()
      assert.is_false(item)
      assert.equal("ClientError.ClientClosed", err.code)
      assert.matches("closed", tostring(c))
      assert.equal(0, requests())
    end)
  end)

  describe("secrets", function()
    it("shows region and endpoint in tostring(client), nothing else", function()
      local c = assert(new{ endpoint = emu.url .. "/" })
      assert.equal("tencentcloud.iotexplorer client (region=ap-guangzhou, endpoint=" .. emu.url .. "/)", tostring(c))
      c:close()
      -- User info in the endpoint is refused at iot.new, and the refusal does not repeat it.
      local none, err = new{ endpoint = "http://user:hunter2@127.0.0.1:9/" }
      assert.is_nil(none)
      assert.equal("endpoint", err.field)
      assert.falsy(tostring(err):find("hunter2", 1, true))
    end)

    it("scrubs a secret a server echoes back in a message", function()
      emu:fault{ kind = "error", code = "AuthFailure.SignatureFailure",
        message = "bad signature for key " .. emu.secret_key }
      local _, err = client:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.equal("AuthFailure.SignatureFailure", err.code)
      assert.equal("bad signature for key ***", err.message)
    end)

    it("never appeared in any error, tostring or logger record of this file", function()
      assert.is_true(#seen.records > 10)
      assert.is_nil(seen:find({ emu.secret_key, emu.tmp_secret_key, emu.tmp_token }))
    end)
  end)
end)

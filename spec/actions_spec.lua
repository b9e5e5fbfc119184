-- The action tables are the one source of the API's facts: the typed methods' checks come from them, and
-- each input is checked once, at the layer that owns it (the endpoint at iot.new, the parameters before
-- any I/O).
local iot = require("tencentcloud.iotexplorer")
local actions = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local emulator = require("helpers.emulator")

local CREATE = { ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0 }

local function with(t, extra)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

describe("actions", function()
  local emu, client

  local function requests()
    return emu:counters().requests
  end

  setup(function()
    emu = emulator.start()
    client = assert(iot.new{ endpoint = emu.url, region = "ap-guangzhou", secret_id = emu.secret_id,
      secret_key = emu.secret_key, metadata_endpoint = false, backoff_base = 0.01 })
  end)

  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)

  describe("typed methods", function()
    it("exist for every action of the table, and only for those", function()
      for _, a in ipairs(actions.list) do
        assert.is_function(client[a.method], a.method)
      end
      assert.is_function(client.describe_device)
    end)

    it("refuse a misspelt key before any I/O, naming it and the nearest known key", function()
      local before = requests()
      local res, err = client:create_batch_production(with(CREATE, { BatchCount = 5 }))
      assert.is_nil(res)
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal("BatchCount", err.field)
      assert.truthy(err.message:find("did you mean BatchCnt?", 1, true), err.message)
      assert.is_false(err.sent)
      assert.equal(before, requests())
    end)

    it("take GenerationQRCode as the service's Integer 0/1, not a Boolean", function()
      local res, err = client:create_batch_production(with(CREATE, { BatchCnt = 2, GenerationQRCode = 1 }))
      assert.is_nil(err)
      assert.is_string(res.BatchProductionId)
      local _, e2 = client:create_batch_production(with(CREATE, { BatchCnt = 2, GenerationQRCode = true }))
      assert.equal("GenerationQRCode", e2.field)
      local _, e3 = client:create_batch_production(with(CREATE, { BatchCnt = 2, GenerationQRCode = 2 }))
      assert.equal("GenerationQRCode", e3.field)
    end)

    it("apply the conditional rules: BatchCnt when GenerationMethod is 0, UploadUrl when it is 1", function()
      local _, err = client:create_batch_production(CREATE)
      assert.equal("BatchCnt", err.field)
      assert.truthy(err.message:find("GenerationMethod is 0", 1, true))
      _, err = client:create_batch_production(with(CREATE, { GenerationMethod = 1 }))
      assert.equal("UploadUrl", err.field)
    end)

    it("send Lua 5.4 integers as integers whatever their float form", function()
      local res, err = client:create_batch_production(with(CREATE, { BatchCnt = 3.0 }))
      assert.is_nil(err)
      assert.is_string(res.BatchProductionId)
    end)
  end)

  describe("iot.new", function()
    local function new(o)
      o.region = o.region or "ap-guangzhou"
      o.secret_id, o.secret_key, o.metadata_endpoint = "AKIDX", "KEYX", false
      return iot.new(o)
    end

    it("refuses an endpoint with a path, a query, user info or a port out of range", function()
      for _, url in ipairs({ "https://host/path", "https://host:99999", "https://host:0", "https://host?q=1",
                             "https://u:p@host", "ftp://host", "https://", "https://ho st" }) do
        local c, err = new{ endpoint = url }
        assert.is_nil(c, url)
        assert.equal("ClientError.InvalidParameter", err.code, url)
        assert.equal("endpoint", err.field, url)
      end
    end)

    it("accepts host, host:port, IPv6 and one trailing slash", function()
      for _, url in ipairs({ "https://host", "http://127.0.0.1:8080", "https://[::1]:443/", "HTTPS://Host.Example" }) do
        local c, err = new{ endpoint = url }
        assert.is_nil(err, url)
        c:close()
      end
    end)

    it("accepts the documented nginx = { ... } form outside nginx, and refuses other types", function()
      local c, err = new{ nginx = { thread_pool = "iotexplorer" } }
      assert.is_nil(err)
      c:close()
      c = assert(new{ nginx = false })
      c:close()
      local _, e2 = new{ nginx = "yes" }
      assert.equal("nginx", e2.field)
    end)

    it("names the option and suggests the known one for a misspelt option", function()
      local _, err = new{ secretId = "x" }
      assert.equal("secretId", err.field)
      assert.truthy(err.message:find("did you mean secret_id?", 1, true), err.message)
    end)

    it("names --region and the variable when the region is missing", function()
      assert.is_nil(os.getenv("TENCENTCLOUD_REGION"))
      local _, err = iot.new{ secret_id = "a", secret_key = "b", metadata_endpoint = false }
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal("region", err.field)
      assert.truthy(err.message:find("--region", 1, true))
      assert.truthy(err.message:find("TENCENTCLOUD_REGION", 1, true))
    end)

    it("closes with <close> (Lua 5.4) through __close", function()
      local c = assert(new{})
      assert.is_function(getmetatable(c).__close)
      getmetatable(c).__close(c)
      assert.is_true(c.closed)
    end)
  end)

  describe("check.params", function()
    it("gives each failure the kind the service's code follows from", function()
      local a = actions.by_name.CreateBatchProduction
      local cases = {
        { with(CREATE, { BatchCnt = 1, Nope = 1 }), "unknown" },
        { { ProjectId = "P" }, "missing" },
        { with(CREATE, { BatchCnt = "many" }), "type" },
        { with(CREATE, { BatchCnt = 0 }), "range" },
      }
      for _, case in ipairs(cases) do
        local _, err = check.params(a, case[1])
        assert.equal(case[2], err.kind)
        assert.is_string(actions.COMMON_PARAMETER_ERRORS[err.kind])
      end
    end)

    -- Values that passed are remembered (check.lua): the verdict must stay the one the rule gives, for the
    -- same value again, for a bad one among many good ones, and after the memory starts over.
    it("gives every string the same verdict however often and among however many it was seen", function()
      local a = actions.by_name.DescribeBatchProduction
      local function verdict(id)
        local p, err = check.params(a, { ProductId = id, BatchProductionId = "LC-ya6zinv9" })
        return p and "ok" or err.field .. ": " .. err.message
      end
      for round = 1, 3 do
        for i = 1, 1500 do
          assert.equal("ok", verdict("P" .. i))
        end
        for _ = 1, 2 do                                           -- seen again at once: still refused
          assert.equal("ok", verdict("R32ONVL0EU"))
          assert.equal("ProductId: ProductId must not contain control characters", verdict("R32\nONVL0EU"))
          assert.equal("ProductId: ProductId must be valid UTF-8", verdict("R32\255"))
          assert.equal("ProductId: ProductId must not be empty", verdict(""))
          assert.truthy(verdict(42):find("must be a string"), round)
          assert.equal("ok", verdict("Produit-é"))
        end
      end
    end)
  end)

  describe("check.copy", function()
    it("copies every field raw: no __pairs or __index of the caller's table runs", function()
      local raising = function() error("metamethod ran") end
      local t = setmetatable({ ProductId = "R32ONVL0EU", [1] = false }, { __pairs = raising, __index = raising })
      local c = check.copy(t)
      assert.is_nil(getmetatable(c))
      assert.are.same({ ProductId = "R32ONVL0EU", [1] = false }, c)
      assert.are_not.equal(t, c)
    end)
  end)
end)

-- Conformance against a client nobody here wrote: Tencent Cloud's official Node.js SDK
-- (tencentcloud-sdk-nodejs-common, pinned in spec/helpers/node/package-lock.json, installed into
-- build/node by `make node-deps`, which `make check` and `make test` run first) drives the emulator
-- unchanged, through its CommonClient, its STS credential providers and its error objects. And the
-- reverse: core.sign reproduces every signature the SDK's own signer made in the same run.
local cjson = require("cjson.safe")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local MODULES = util.ROOT .. "/build/node/node_modules"
local DRIVER = util.ROOT .. "/spec/helpers/node/driver.js"
local UUID = "^%x+%-%x+%-%x+%-%x+%-%x+$"

describe("the official Node.js SDK against the emulator", function()
  local emu, results, keys

  lazy_setup(function()
    local sdk = MODULES .. "/tencentcloud-sdk-nodejs-common/package.json"
    assert(util.read_file(sdk), "the Node.js SDK is not installed in build/node: run `make node-deps`")
    emu = emulator.start()
    local d = emulator.defaults
    local vars = {
      EMU_SECRET_ID = d.SECRET_ID, EMU_SECRET_KEY = d.SECRET_KEY, EMU_TMP_SECRET_ID = d.TMP_SECRET_ID,
      EMU_TMP_SECRET_KEY = d.TMP_SECRET_KEY, EMU_TMP_TOKEN = d.TMP_TOKEN, EMU_ROLE_ARN = d.ROLE_ARN,
      EMU_PROVIDER_ID = d.PROVIDER_ID, EMU_WEB_IDENTITY_TOKEN = d.WEB_IDENTITY_TOKEN,
    }
    local assignments = {}
    for k, v in pairs(vars) do assignments[#assignments + 1] = k .. "=" .. util.shell_quote(v) end
    local ok, out = util.run(string.format("env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY %s"
      .. " node %s %s %d", table.concat(assignments, " "), util.shell_quote(DRIVER), util.shell_quote(MODULES),
      emu.port))
    results = ok and cjson.decode(out)
    assert(type(results) == "table", "the Node.js driver failed: " .. tostring(out):sub(1, 2000))
    keys = { [d.SECRET_ID] = { d.SECRET_KEY }, [d.TMP_SECRET_ID] = { d.TMP_SECRET_KEY, d.TMP_TOKEN } }
  end)

  lazy_teardown(function()
    if emu then emu:stop() end
  end)

  local function ok(name)
    local r = results[name]
    assert.is_table(r, name)
    assert.is_nil(r.error, name .. ": " .. cjson.encode(r.error or {}))
    assert.matches(UUID, r.ok.RequestId)
    return r.ok
  end

  describe("CommonClient", function()
    it("describes the documented batch", function()
      local r = ok("describe")
      assert.equal(3, r.BatchCnt)
      assert.equal(1572233486, r.CreateTime)
      assert.equal(3, r.Status)
      assert.matches("/_download/R32ONVL0EU_LC%-ya6zinv9%.csv%?", r.DownloadUrl)
    end)

    it("creates a batch, with GenerationQRCode as an Integer, that the list then holds", function()
      local created = ok("create")
      assert.matches("^LC%-", created.BatchProductionId)
      local found
      for _, item in ipairs(ok("list").BatchProductions) do
        if item.BatchProductionId == created.BatchProductionId then found = item end
      end
      assert.is_table(found)
      local names = {}
      for k in pairs(found) do names[#names + 1] = k end
      table.sort(names)
      assert.same({ "BatchProductionId", "BurnMethod", "CreateTime", "ProductId", "ProductName" }, names)
      assert.is_true(ok("list").TotalCnt >= 2)
    end)

    it("calls with GET, the parameters in its signed query string", function()
      assert.equal(3, ok("get").BatchCnt)
      assert.equal(2, #ok("get_list").BatchProductions)
    end)

    it("sends non-ASCII text, long bodies and a session token", function()
      ok("non_ascii")
      ok("long")
      ok("token")
      assert.is_true(results.token.signed[1].token)
    end)
  end)

  describe("its error objects carry the service's code and RequestId", function()
    local cases = {
      { "unknown", "UnknownParameter" }, { "missing", "MissingParameter" }, { "empty", "MissingParameter" },
      { "wrong_type", "InvalidParameter" }, { "out_of_range", "InvalidParameterValue" },
      { "rate_limit", "RequestLimitExceeded" }, { "not_found", "ResourceNotFound.BatchProductionNotExist" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": " .. case[2], function()
        local e = results[case[1]].error
        assert.is_table(e, case[1] .. " succeeded")
        assert.equal(case[2], e.code)
        assert.matches(UUID, e.requestId)
        assert.is_string(e.message)
      end)
    end

    it("names the service after the endpoint's first label: an IP endpoint signs for service 127", function()
      local e = results.ip_endpoint.error
      assert.equal("AuthFailure.SignatureFailure", e.code)
      assert.equal("127", results.ip_endpoint.signed[1].service)
    end)
  end)

  describe("its STS credential providers", function()
    it("STSCredential assumes a role (signed, service sts) and calls with the temporary keys", function()
      assert.equal(3, ok("assume_role").BatchCnt)
      local signed = results.assume_role.signed
      assert.equal("sts", signed[1].service)
      assert.equal("AssumeRole", signed[1].action)
      assert.equal("iotexplorer", signed[2].service)
      assert.is_true(signed[2].token)
      assert.matches("^AKID", signed[2].secretId)
    end)

    it("OIDCRoleArnCredential sends AssumeRoleWithWebIdentity unsigned and calls with its keys", function()
      assert.equal(3, ok("oidc").BatchCnt)
      local signed = results.oidc.signed
      assert.equal(1, #signed)   -- the unsigned STS call never reached the signer
      assert.is_true(signed[1].token)
      assert.equal(1, emu:sts().by_action.AssumeRoleWithWebIdentity)
      assert.equal(1, emu:sts().by_action.AssumeRole)
    end)
  end)

  describe("core.sign", function()
    it("reproduces every signature the SDK made with a key it knows", function()
      local compared, kinds = 0, {}
      for name, r in pairs(results) do
        for _, s in ipairs(r.signed) do
          local key = keys[s.secretId]
          if key then
            local headers, err = core.sign({
              secret_id = s.secretId, secret_key = key[1], token = s.token and key[2] or nil,
              service = s.service, host = s.hostname, region = s.region, action = s.action, version = s.version,
              timestamp = math.tointeger and math.tointeger(s.timestamp) or s.timestamp,
              content_type = s.contentType, method = s.method, query = s.query ~= "" and s.query or nil,
              payload = s.body ~= cjson.null and s.body or nil,
            })
            assert.is_table(headers, name .. ": " .. tostring(err and err.message))
            assert.equal(s.authorization, headers.Authorization, name)
            compared = compared + 1
            kinds[s.method .. (s.token and "+token" or "")] = true
            if s.body ~= cjson.null and #s.body > 100000 then kinds.long = true end
            if s.body ~= cjson.null and s.body:find("[\128-\255]") then kinds.non_ascii = true end
            if s.body == "{}" then kinds.empty = true end
          end
        end
      end
      assert.is_true(compared >= 15, "compared " .. compared)
      assert.same({ POST = true, GET = true, ["POST+token"] = true, long = true, non_ascii = true, empty = true,
        }, kinds)
    end)
  end)
end)

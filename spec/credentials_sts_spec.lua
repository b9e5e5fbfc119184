-- AssumeRole and OIDC (AssumeRoleWithWebIdentity) against the emulator's STS room, which issues temporary
-- keys that its iotexplorer actions then accept, expire by its clock and can revoke early; it counts the
-- STS requests it served (GET /_emulator/sts).
local iot = require("tencentcloud.iotexplorer")
local credentials = require("tencentcloud.iotexplorer.credentials")
local emulator = require("helpers.emulator")
local secrets = require("helpers.secrets")
local util = require("helpers.util")

local defaults = emulator.defaults
local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local ROLE = defaults.ROLE_ARN
local ROTATED_TOKEN = "emulator-web-identity-token-rotated-0001"

local function env(t)
  return function(name) return t[name] end
end

describe("credentials from STS", function()
  local emu, tmp, watch, issued_keys

  setup(function()
    local fixture = defaults.fixture()
    fixture.sts.providers[1].tokens[2] = ROTATED_TOKEN
    fixture.rate_limit = 0
    emu = emulator.start{ fixture = fixture }
    tmp = util.tmpdir()
    watch = secrets.watch()
    issued_keys = {}
  end)

  teardown(function()
    if emu then emu:stop() end
    util.rm_rf(tmp)
    watch:assert_clean()
  end)

  before_each(function()
    emu:reset()
  end)

  local function assume_count()
    return emu:sts().by_action.AssumeRole or 0
  end

  local function oidc_count()
    return emu:sts().by_action.AssumeRoleWithWebIdentity or 0
  end

  -- Chain options that read nothing from this machine.
  local function chain_opts(o)
    o.getenv = o.getenv or env({})
    o.files = o.files or {}
    o.home = o.home or (tmp .. "/home")
    o.metadata_endpoint = false
    o.sts_endpoint = o.sts_endpoint or emu.url
    return o
  end

  local function client(o)
    o.region, o.endpoint, o.metadata_endpoint = "ap-guangzhou", emu.url, false
    o.sts_endpoint = o.sts_endpoint or emu.url
    o.logger = watch:logger(o.logger)
    local c, err = iot.new(o)
    watch:see(err)
    if c then watch:text("client", tostring(c)) end
    return c, err
  end

  -- Every secret an error, log record or tostring must not show, including those the emulator issued.
  local function see(...)
    watch:see(...)
    for i = 1, select("#", ...) do
      local s = tostring((select(i, ...)))
      for _, k in ipairs(issued_keys) do
        assert.is_nil(s:find(k, 1, true), "an issued key or token leaked")
      end
      assert.is_nil(s:find(defaults.WEB_IDENTITY_TOKEN, 1, true), "the web identity token leaked")
      assert.is_nil(s:find(defaults.SECRET_KEY, 1, true), "the base key leaked")
    end
    return ...
  end

  describe("AssumeRole", function()
    it("assumes role_arn with the explicit keys, then signs with the temporary keys and their token", function()
      local records = {}
      local c = assert(client{ secret_id = defaults.SECRET_ID, secret_key = defaults.SECRET_KEY, role_arn = ROLE,
        role_session_name = "spec-session", logger = function(r) records[#records + 1] = r end })
      assert.equal(0, assume_count())
      for _ = 1, 3 do assert(see(c:describe_batch_production(DESCRIBE))) end
      assert.equal(1, assume_count())
      local issued = emu:sts().issued
      assert.equal("spec-session", issued[#issued].RoleSessionName)
      assert.equal("role " .. ROLE .. " (assumed with explicit)", records[1].credentials)
      c:close()
    end)

    it("assumes TENCENTCLOUD_ROLE_ARN with the keys from the environment", function()
      local chain = assert(credentials.new(chain_opts{ getenv = env({ TENCENTCLOUD_SECRET_ID = defaults.SECRET_ID,
        TENCENTCLOUD_SECRET_KEY = defaults.SECRET_KEY, TENCENTCLOUD_ROLE_ARN = ROLE,
        TENCENTCLOUD_ROLE_SESSION_NAME = "env-session" }) }))
      local k = assert(chain:get())
      issued_keys[#issued_keys + 1] = k.secret_key
      issued_keys[#issued_keys + 1] = k.token
      assert.equal("role " .. ROLE .. " (assumed with environment)", k.source)
      local issued = emu:sts().issued
      assert.equal("env-session", issued[#issued].RoleSessionName)
      assert.matches("^AKID", k.secret_id)
      assert.is_string(k.token)
      see(tostring(k), tostring(chain))
    end)

    it("is renewed at ExpiredTime - 0.9 x duration, or 300 s early, whichever is sooner", function()
      local now = os.time()
      local chain = assert(credentials.new(chain_opts{ secret_id = defaults.SECRET_ID,
        secret_key = defaults.SECRET_KEY, role_arn = ROLE, time = function() return now end }))
      local first = assert(chain:get())
      assert.equal(1, assume_count())
      now = now + 719 -- 7200 s issued: renewed after 720 s
      assert.equal(first, chain:get())
      now = now + 2
      local second = assert(chain:get())
      assert.are_not.equal(first.secret_id, second.secret_id)
      assert.equal(2, assume_count())

      -- A short role: 0.9 x 400 = 360 s early, sooner than 300 s.
      chain = assert(credentials.new(chain_opts{ secret_id = defaults.SECRET_ID, secret_key = defaults.SECRET_KEY,
        role_arn = ROLE, role_duration = 400, time = function() return now end }))
      local short = assert(chain:get())
      assert.equal(3, assume_count())
      assert.is_true(short.refresh_at <= short.expiration - 360)
      now = now + 41
      assert(chain:get())
      assert.equal(4, assume_count())
    end)

    it("50 coroutines sharing a client cause one AssumeRole", function()
      local c = assert(client{ secret_id = defaults.SECRET_ID, secret_key = defaults.SECRET_KEY, role_arn = ROLE,
        rate_limit = false })
      local threads, done = {}, 0
      for i = 1, 50 do
        threads[i] = coroutine.create(function()
          coroutine.yield()
          assert(see(c:describe_batch_production(DESCRIBE)))
          done = done + 1
        end)
        assert(coroutine.resume(threads[i]))
      end
      for i = 1, 50 do assert(coroutine.resume(threads[i])) end
      assert.equal(50, done)
      assert.equal(1, assume_count())
      assert.equal(51, emu:counters().requests)   -- one AssumeRole, fifty API calls
      c:close()
    end)

    it("call_many over 50 items causes one AssumeRole", function()
      local c = assert(client{ secret_id = defaults.SECRET_ID, secret_key = defaults.SECRET_KEY, role_arn = ROLE,
        rate_limit = false })
      if not c.call_many then
        c:close()
        pending("this client has no call_many")
        return
      end
      local list = {}
      for i = 1, 50 do list[i] = DESCRIBE end
      local before = emu:counters().requests
      local results, errs = c:call_many("DescribeBatchProduction", list, { concurrency = 16 })
      see(errs)
      for i = 1, 50 do assert.is_table(results[i], tostring(errs and errs[i])) end
      assert.equal(1, assume_count())
      assert.equal(before + 51, emu:counters().requests)
      c:close()
    end)

    it("a revoked temporary key is replaced once within the call; STS refusing the base keys is an error", function()
      local c = assert(client{ secret_id = defaults.SECRET_ID, secret_key = defaults.SECRET_KEY, role_arn = ROLE })
      assert(see(c:describe_batch_production(DESCRIBE)))
      emu:revoke{ all = true }
      assert(see(c:describe_batch_production(DESCRIBE)))
      assert.equal(2, assume_count())
      c:close()

      local before = emu:counters().requests
      c = assert(client{ secret_id = defaults.SECRET_ID, secret_key = "WrongKeyWrongKeyWrongKeyWrong000",
        role_arn = ROLE })
      local res, err = see(c:describe_batch_production(DESCRIBE))
      assert.is_nil(res)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("role " .. ROLE:gsub("%p", "%%%0") .. ": AssumeRole at .* failed: AuthFailure", err.message)
      assert.equal(before + 1, emu:counters().requests)   -- the AssumeRole alone, never the API call
      c:close()
    end)

    it("a role STS does not know is an error naming the role", function()
      local chain = assert(credentials.new(chain_opts{ secret_id = defaults.SECRET_ID,
        secret_key = defaults.SECRET_KEY, role_arn = "qcs::cam::uin/1:roleName/nope" }))
      local k, err = see(chain:get())
      assert.is_nil(k)
      assert.matches("roleName/nope: AssumeRole at .* failed: ResourceNotFound.RoleNotFound", err.message)
    end)

    it("a base chain with nothing in it is an error from iot.new", function()
      local _, err = credentials.new(chain_opts{ role_arn = ROLE })
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("no credentials found", err.message)
    end)
  end)

  describe("OIDC", function()
    local token_file

    before_each(function()
      token_file = tmp .. "/token"
      util.write_file(token_file, defaults.WEB_IDENTITY_TOKEN .. "\n")
    end)

    local function oidc_opts(o)
      o.oidc_provider_id, o.oidc_token_file, o.role_arn = defaults.PROVIDER_ID, token_file, ROLE
      return o
    end

    it("assumes the role with the token file, unsigned, and signs with the keys", function()
      local c = assert(client(oidc_opts{}))
      for _ = 1, 3 do assert(see(c:describe_batch_production(DESCRIBE))) end
      assert.equal(1, oidc_count())
      c:close()
    end)

    it("comes after the CVM role in the default chain, from the TKE variables", function()
      local chain = assert(credentials.new(chain_opts{ getenv = env({ TKE_PROVIDER_ID = defaults.PROVIDER_ID,
        TKE_WEB_IDENTITY_TOKEN_FILE = token_file, TKE_ROLE_ARN = ROLE, TKE_REGION = "ap-guangzhou" }) }))
      local k = assert(see(chain:get()))
      assert.equal("oidc role " .. ROLE, k.source)
      assert.equal(1, oidc_count())
    end)

    it("reads the token file again at each refresh", function()
      local now = os.time()
      local chain = assert(credentials.new(chain_opts(oidc_opts{ time = function() return now end })))
      assert(see(chain:get()))
      util.write_file(token_file, ROTATED_TOKEN)
      now = now + 721
      assert(see(chain:get()))
      assert.equal(2, oidc_count())
      -- a token the provider does not accept: the refresh fails, naming the source, never the token
      util.write_file(token_file, "not-a-token-the-provider-knows")
      now = now + 7200
      local k, err = see(chain:get())
      assert.is_nil(k)
      assert.matches("could not be refreshed: oidc role .*WebIdentityTokenError", err.message)
      assert.is_nil(err.message:find("not-a-token-the-provider-knows", 1, true))
    end)

    it("a missing, unreadable or empty token file is an error naming the file", function()
      for _, case in ipairs({ { tmp .. "/missing", "cannot be read" }, { tmp, "cannot be read" },
        { tmp .. "/empty", "is empty" } }) do
        util.write_file(tmp .. "/empty", "  \n")
        local chain = assert(credentials.new(chain_opts{ oidc_provider_id = defaults.PROVIDER_ID,
          oidc_token_file = case[1], role_arn = ROLE }))
        local k, err = see(chain:get())
        assert.is_nil(k)
        assert.equal("ClientError.CredentialError", err.code)
        assert.matches("web identity token file " .. case[1]:gsub("%p", "%%%0") .. " " .. case[2], err.message)
      end
      assert.equal(0, oidc_count())
    end)
  end)
end)

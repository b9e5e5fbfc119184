-- Each credential source, end to end: a client built from it calls the emulator,
-- which verifies the signature (and the token for temporary keys). Environment
-- and profile-file sources run in a child interpreter with a controlled
-- environment, since a process cannot set its own environment variables.
local iot = require("tencentcloud.iotexplorer")
local emulator = require("helpers.emulator")
local metadata_server = require("helpers.metadata_server")
local leaks = require("helpers.leaks")
local util = require("helpers.util")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local write = util.write_file

describe("client credentials", function()
  local emu, meta, seen, tmp, script

  -- Runs the child with only the given environment; returns what it printed.
  local function child(env, profile)
    local parts = { "env -i PATH=\"$PATH\"" }
    for k, v in pairs(env) do parts[#parts + 1] = k .. "='" .. v .. "'" end
    local _, out = util.run(table.concat(parts, " ") .. " " .. util.INTERPRETER .. " " .. script .. " " .. emu.url
      .. (profile and (" " .. profile) or ""))
    seen:see(out)
    return out
  end

  setup(function()
    emu = emulator.start()
    meta = metadata_server.start{ role = "iot-role", secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key,
      token = emu.tmp_token }
    seen = leaks.new()
    tmp = util.tmpdir()
    util.check_output("mkdir -p '" .. tmp .. "/home/.tencentcloud'")
    script = tmp .. "/child.lua"
    write(script, [[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = "build/]] .. util.FLAVOUR .. [[/?.so;" .. package.cpath
      local iot = require("tencentcloud.iotexplorer")
      local c, err = iot.new{ region = "ap-guangzhou", endpoint = arg[1], metadata_endpoint = false,
        profile = arg[2] }
      if not c then io.write("NEW ", tostring(err)) return end
      local res
      res, err = c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
      if not res then io.write("CALL ", tostring(err)) return end
      io.write("OK ", res.BatchCnt)
    ]])
  end)

  teardown(function()
    if meta then meta:stop() end
    if emu then emu:stop() end
    util.rm_rf(tmp)
  end)

  before_each(function()
    emu:reset()
    meta:set{ reset = true, expires_in = 7200, status = 200, secret_id = emu.tmp_secret_id }
  end)

  it("explicit keys, with and without a token", function()
    local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false,
      secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key, token = emu.tmp_token })
    assert(c:describe_batch_production(DESCRIBE))
    c:close()
    -- the emulator insists on the token for temporary keys: proof it was sent
    c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false,
      secret_id = emu.tmp_secret_id, secret_key = emu.tmp_secret_key })
    local _, err = c:describe_batch_production(DESCRIBE)
    seen:see(err)
    assert.matches("^AuthFailure", err.code)
    c:close()
  end)

  it("TENCENTCLOUD_SECRET_ID / _SECRET_KEY / _SESSION_TOKEN", function()
    assert.equal("OK 3", child{ TENCENTCLOUD_SECRET_ID = emu.secret_id, TENCENTCLOUD_SECRET_KEY = emu.secret_key })
    assert.equal("OK 3", child{ TENCENTCLOUD_SECRET_ID = emu.tmp_secret_id,
      TENCENTCLOUD_SECRET_KEY = emu.tmp_secret_key, TENCENTCLOUD_SESSION_TOKEN = emu.tmp_token })
    assert.equal(2, emu:counters().requests)
  end)

  it("refuses a key with stray whitespace from the environment, without printing it", function()
    local out = child{ TENCENTCLOUD_SECRET_ID = emu.secret_id, TENCENTCLOUD_SECRET_KEY = emu.secret_key .. " " }
    assert.matches("^NEW ClientError.CredentialError: .*whitespace", out)
    assert.is_nil(out:find(emu.secret_key, 1, true))
    assert.equal(0, emu:counters().requests)
  end)

  it("the profile file from TENCENTCLOUD_CREDENTIALS_FILE", function()
    write(tmp .. "/creds", "[default]\nsecret_id = " .. emu.secret_id .. "\nsecret_key = " .. emu.secret_key .. "\n")
    assert.equal("OK 3", child{ TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/creds", HOME = tmp .. "/nohome" })
  end)

  it("~/.tencentcloud/credentials, section from TENCENTCLOUD_PROFILE", function()
    write(tmp .. "/home/.tencentcloud/credentials", "[default]\nsecret_id = WRONG\nsecret_key = WRONG\n\n[tmp]\n"
      .. "secret_id = " .. emu.tmp_secret_id .. "\nsecret_key = " .. emu.tmp_secret_key .. "\ntoken = "
      .. emu.tmp_token .. "\n")
    assert.equal("OK 3", child{ HOME = tmp .. "/home", TENCENTCLOUD_PROFILE = "tmp" })
    local out = child{ HOME = tmp .. "/home", TENCENTCLOUD_PROFILE = "nope" }
    assert.matches("^NEW ClientError.CredentialError: profile %[nope%] not found", out)
  end)

  it("the environment wins over the profile file", function()
    write(tmp .. "/creds2", "[default]\nsecret_id = WRONG\nsecret_key = WRONG\n")
    assert.equal("OK 3", child{ TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/creds2",
      TENCENTCLOUD_SECRET_ID = emu.secret_id, TENCENTCLOUD_SECRET_KEY = emu.secret_key })
  end)

  it("no source at all is an error from iot.new that lists each source tried", function()
    local out = child{ HOME = tmp .. "/nohome" }
    assert.matches("^NEW ClientError.CredentialError: no credentials found", out)
    assert.matches("\n  environment: TENCENTCLOUD_SECRET_ID/KEY not set\n", out)
    assert.matches("\n  profile file: not found at ~/.tencentcloud/credentials", out)
    assert.matches("\n  tccli: not found at ~/.tccli/default.credential\n", out)
  end)

  it("TENCENTCLOUD_TOKEN, tccli's spelling of the session token", function()
    assert.equal("OK 3", child{ TENCENTCLOUD_SECRET_ID = emu.tmp_secret_id,
      TENCENTCLOUD_SECRET_KEY = emu.tmp_secret_key, TENCENTCLOUD_TOKEN = emu.tmp_token })
  end)

  it("tccli's ~/.tccli/<profile>.credential, and --profile over the environment", function()
    util.check_output("mkdir -p '" .. tmp .. "/tchome/.tccli'")
    write(tmp .. "/tchome/.tccli/iot.credential", '{"secretId": "' .. emu.tmp_secret_id .. '", "secretKey": "'
      .. emu.tmp_secret_key .. '", "token": "' .. emu.tmp_token .. '"}')
    assert.equal("OK 3", child({ HOME = tmp .. "/tchome", TCCLI_PROFILE = "iot" }))
    assert.equal("OK 3", child({ HOME = tmp .. "/tchome", TENCENTCLOUD_SECRET_ID = "WRONG",
      TENCENTCLOUD_SECRET_KEY = "WRONG" }, "iot"))
    write(tmp .. "/tchome/.tccli/iot.credential", '{"secretId": "' .. emu.tmp_secret_id .. '", "secretKey": "'
      .. emu.tmp_secret_key .. '"')
    local out = child({ HOME = tmp .. "/tchome" }, "iot")
    assert.matches("^NEW ClientError.CredentialError: ~/.tccli/iot.credential is not a JSON object", out)
    assert.is_nil(out:find(emu.tmp_secret_key, 1, true))
  end)

  describe("CVM role", function()
    local function new()
      local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = meta.url,
        logger = seen:logger() })
      seen:see(c)
      return c
    end

    it("is fetched on first call, with its token, then cached across calls", function()
      local c = new()
      assert.same({ role = 0, creds = 0 }, meta:counters())
      for _ = 1, 3 do
        local res, err = c:describe_batch_production(DESCRIBE)
        seen:see(res, err)
        assert.is_nil(err)
      end
      assert.same({ role = 1, creds = 1 }, meta:counters())
      assert.equal(3, emu:counters().requests)
      c:close()
    end)

    it("is refreshed when it gets within 300 s of expiry", function()
      meta:set{ expires_in = 250 }
      local c = new()
      assert(c:describe_batch_production(DESCRIBE))
      assert(c:describe_batch_production(DESCRIBE))
      assert.same({ role = 1, creds = 2 }, meta:counters())
      c:close()
    end)

    it("is fetched again once after the server rejects the keys, then the error names the source", function()
      meta:set{ secret_id = "AKIDREVOKED000" }
      local c = new()
      local _, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.equal("AuthFailure.SecretIdNotFound", err.code)
      assert.matches("new keys from cvm role iot%-role were rejected too", err.message)
      assert.equal(2, meta:counters().creds)
      assert.equal(2, emu:counters().requests)
      meta:set{ secret_id = emu.tmp_secret_id }
      assert(c:describe_batch_production(DESCRIBE))
      assert.equal(3, meta:counters().creds)
      c:close()
    end)

    it("tells the logger (tciot --verbose) which source supplied the keys", function()
      local records = {}
      local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = meta.url,
        logger = seen:logger(function(r) records[#records + 1] = r end) })
      assert(c:describe_batch_production(DESCRIBE))
      assert.equal("cvm role iot-role", records[1].credentials)
      c:close()
    end)

    it("returns a CredentialError from the call when the metadata service fails", function()
      meta:set{ status = 500 }
      local c = new()
      local res, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.is_nil(res)
      assert.equal("ClientError.CredentialError", err.code)
      assert.is_false(err.retryable)
      assert.equal(0, emu:counters().requests)
      c:close()
    end)
  end)

  it("a custom provider, asked on first use and cached until its expiry", function()
    local calls = 0
    local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false,
      credential_provider = function()
        calls = calls + 1
        return emu.tmp_secret_id, emu.tmp_secret_key, emu.tmp_token, os.time() + 3600
      end })
    assert.equal(0, calls)
    assert(c:describe_batch_production(DESCRIBE))
    assert(c:describe_batch_production(DESCRIBE))
    assert.equal(1, calls)
    c:close()
  end)

  it("a revoked temporary key is replaced once within the call", function()
    local calls = 0
    local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false,
      credential_provider = function()
        calls = calls + 1
        if calls == 1 then return "AKIDREVOKED000", emu.tmp_secret_key, emu.tmp_token, os.time() + 3600 end
        return emu.tmp_secret_id, emu.tmp_secret_key, emu.tmp_token, os.time() + 3600
      end })
    local res, err = c:describe_batch_production(DESCRIBE)
    seen:see(res, err)
    assert.is_nil(err)
    assert.equal(2, calls)
    assert.equal(2, emu:counters().requests)
    c:close()
  end)

  it("static keys the server rejects are not asked for again", function()
    local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false,
      secret_id = "AKIDREVOKED000", secret_key = emu.secret_key })
    local _, err = c:describe_batch_production(DESCRIBE)
    seen:see(err)
    assert.equal("AuthFailure.SecretIdNotFound", err.code)
    assert.equal(1, emu:counters().requests)
    c:close()
  end)

  it("tciot --verbose shows neither the keys nor the token", function()
    local cmd = "env -i PATH=\"$PATH\" HOME='" .. tmp .. "/nohome' TENCENTCLOUD_REGION=ap-guangzhou"
      .. " TENCENTCLOUD_SECRET_ID='" .. emu.tmp_secret_id .. "' TENCENTCLOUD_SECRET_KEY='" .. emu.tmp_secret_key
      .. "' TENCENTCLOUD_TOKEN='" .. emu.tmp_token .. "' " .. util.INTERPRETER .. " bin/tciot --endpoint " .. emu.url
      .. " --verbose DescribeBatchProduction --ProductId R32ONVL0EU --BatchProductionId LC-ya6zinv9"
    local ok, out = util.run(cmd)
    seen:see(out)
    assert.is_true(ok, out)
    assert.matches("DescribeBatchProduction attempt 1", out)
    assert.is_nil(out:find(emu.tmp_secret_key, 1, true))
    assert.is_nil(out:find(emu.tmp_token, 1, true))
  end)

  it("never showed a secret or token in any output", function()
    assert.is_nil(seen:find({ emu.secret_key, emu.tmp_secret_key, emu.tmp_token }))
  end)
end)

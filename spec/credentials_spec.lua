-- The credential chain: each source alone and in order, the checks, the errors a person can fix, expiry and
-- refresh, with real files in a temp folder and the CVM role from a real metadata server on loopback
-- (spec/helpers/metadata_server.lua).
local credentials = require("tencentcloud.iotexplorer.credentials")
local metadata_server = require("helpers.metadata_server")
local secrets = require("helpers.secrets")
local util = require("helpers.util")

local SECRET = secrets.SECRET_KEY
local TOKEN = secrets.TOKEN

local function env(t)
  return function(name) return t[name] end
end

local write = util.write_file

describe("credentials", function()
  local tmp, home, watch

  setup(function()
    tmp = util.tmpdir()
    home = tmp .. "/home"
    util.check_output("mkdir -p '" .. home .. "/.tencentcloud' '" .. home .. "/.tccli' '" .. tmp .. "/etc'")
    watch = secrets.watch()
  end)

  teardown(function()
    util.rm_rf(tmp)
    watch:assert_clean()
  end)

  before_each(function()
    os.remove(home .. "/.tencentcloud/credentials")
    os.remove(home .. "/.tccli/default.credential")
    os.remove(home .. "/.tccli/default.configure")
  end)

  -- Nothing from the real machine leaks into these tests: an empty environment, our home, no system file,
  -- no CVM role unless asked for.
  local function new(o)
    o.getenv = o.getenv or env({})
    if o.home == nil then o.home = home end
    if o.files == nil and o.getenv("TENCENTCLOUD_CREDENTIALS_FILE") == nil then
      o.files = { home .. "/.tencentcloud/credentials" }
    end
    if o.metadata_endpoint == nil then o.metadata_endpoint = false end
    local chain, err = credentials.new(o)
    watch:see(err)
    if chain then watch:text("chain", tostring(chain)) end
    return chain, err
  end

  local function get(chain)
    local c, err = chain:get()
    watch:see(err)
    if c then watch:text("record", tostring(c)) end
    return c, err
  end

  local function sdk_file(text) write(home .. "/.tencentcloud/credentials", text) end
  local function tccli_file(text, name) write(home .. "/.tccli/" .. (name or "default") .. ".credential", text) end

  it("exports the options it owns", function()
    for _, name in ipairs({ "secret_id", "secret_key", "token", "profile", "credential_provider",
      "metadata_endpoint", "role_arn", "role_session_name", "role_duration", "role_external_id", "role_policy",
      "sts_endpoint", "sts_region", "oidc_provider_id", "oidc_token_file", "use_cvm_role" }) do
      local found = false
      for _, o in ipairs(credentials.OPTIONS) do found = found or o == name end
      assert.is_true(found, name)
    end
  end)

  describe("parse_ini", function()
    it("reads sections, trims values, skips comments and CRs", function()
      local s = credentials.parse_ini("# top\n[default]\r\nsecret_id = AKID1 \r\n; c\nsecret_key=K1\n\n"
        .. "[ prod ]\nsecret_id =AKID2\nsecret_key= K2\ntoken = T2\nbroken line\n")
      assert.same({ secret_id = "AKID1", secret_key = "K1" }, s.default)
      assert.same({ secret_id = "AKID2", secret_key = "K2", token = "T2" }, s.prod)
    end)
  end)

  describe("explicit keys", function()
    it("are used as given, and win over every other source", function()
      sdk_file("[default]\nsecret_id = FILEID\nsecret_key = FILEKEY\n")
      local chain = assert(new{ secret_id = "AKID", secret_key = SECRET, token = TOKEN,
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "ENVKEY" }) })
      local c = assert(get(chain))
      assert.same({ "AKID", SECRET, TOKEN, "explicit" }, { c.secret_id, c.secret_key, c.token, c.source })
      assert.is_false(chain:invalidate())   -- nothing else to fetch: the client does not retry
    end)

    it("refuses half a pair, and keys with stray whitespace, without showing them", function()
      local _, err = new{ secret_id = "AKID" }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("both secret_id and secret_key", err.message)
      for _, bad in ipairs({ " " .. SECRET, SECRET .. "\n", SECRET .. " ", "\t" .. SECRET }) do
        _, err = new{ secret_id = "AKID", secret_key = bad }
        assert.equal("ClientError.CredentialError", err.code)
        assert.matches("secret_key has leading or trailing whitespace", err.message)
      end
      _, err = new{ secret_id = "AKID", secret_key = SECRET, token = TOKEN .. "\r\n" }
      assert.matches("token has leading or trailing whitespace", err.message)
      _, err = new{ secret_id = "AKID", secret_key = "a\0b" }
      assert.matches("control character", err.message)
      _, err = new{ secret_id = "AKID", secret_key = "" }
      assert.matches("secret_key is empty", err.message)
      _, err = new{ secret_id = 12, secret_key = SECRET }
      assert.matches("secret_id must be a string", err.message)
    end)
  end)

  describe("environment", function()
    it("reads TENCENTCLOUD_SECRET_ID/_KEY and the token by either spelling", function()
      local c = get(assert(new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET,
        TENCENTCLOUD_SESSION_TOKEN = TOKEN }) }))
      assert.same({ "ENVID", SECRET, TOKEN, "environment" }, { c.secret_id, c.secret_key, c.token, c.source })
      -- tccli's spelling of the token
      c = get(assert(new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET,
        TENCENTCLOUD_TOKEN = TOKEN }) }))
      assert.equal(TOKEN, c.token)
      c = get(assert(new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET,
        TENCENTCLOUD_SESSION_TOKEN = "" }) }))
      assert.is_nil(c.token)
    end)

    it("refuses half a pair and stray whitespace", function()
      local _, err = new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID" }) }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY", err.message)
      _, err = new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET .. " " }) }
      assert.matches("TENCENTCLOUD_secret_key has leading or trailing whitespace", err.message)
    end)
  end)

  describe("profile file", function()
    it("reads ~/.tencentcloud/credentials [default] and names it as the source", function()
      sdk_file("[default]\nsecret_id = HOMEID\nsecret_key = " .. SECRET .. "\ntoken = " .. TOKEN .. "\n")
      local chain = assert(credentials.new{ metadata_endpoint = false, getenv = env({ HOME = home }) })
      local c = get(chain)
      assert.same({ "HOMEID", SECRET, TOKEN }, { c.secret_id, c.secret_key, c.token })
      assert.equal("profile file ~/.tencentcloud/credentials [default]", c.source)
    end)

    it("falls back to the next file when one is missing or lacks the section", function()
      write(tmp .. "/etc/credentials", "[default]\nsecret_id = ETCID\nsecret_key = ETCKEY\n")
      write(tmp .. "/other", "[other]\nsecret_id = X\nsecret_key = Y\n")
      local chain = assert(new{ files = { tmp .. "/missing", tmp .. "/other", tmp .. "/etc/credentials" } })
      assert.equal("ETCID", get(chain).secret_id)
    end)

    it("picks the section from profile, else TENCENTCLOUD_PROFILE", function()
      sdk_file("[default]\nsecret_id = D\nsecret_key = DK\n[prod]\nsecret_id = P\nsecret_key = PK\n"
        .. "[stage]\nsecret_id = S\nsecret_key = SK\n")
      assert.equal("P", get(new{ profile = "prod" }).secret_id)
      assert.equal("S", get(new{ getenv = env({ TENCENTCLOUD_PROFILE = "stage" }) }).secret_id)
      assert.equal("P", get(new{ profile = "prod", getenv = env({ TENCENTCLOUD_PROFILE = "stage" }) }).secret_id)
    end)

    it("reads TENCENTCLOUD_CREDENTIALS_FILE instead of the usual places", function()
      write(tmp .. "/p4", "[default]\nsecret_id = OVERRIDE\nsecret_key = OK\n")
      sdk_file("[default]\nsecret_id = HOMEID\nsecret_key = HK\n")
      assert.equal("OVERRIDE", get(new{ getenv = env({ TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/p4" }) }).secret_id)
      local _, err = new{ getenv = env({ TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/nope" }) }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("TENCENTCLOUD_CREDENTIALS_FILE names .*/nope, which cannot be read", err.message)
    end)

    it("says which profile is missing or incomplete", function()
      sdk_file("[default]\nsecret_id = D\n")
      local _, err = new{ profile = "prod" }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("profile %[prod%] not found", err.message)
      assert.matches("profile file: no section %[prod%] in ~/.tencentcloud/credentials", err.message)
      assert.matches("tccli: not found at ~/.tccli/prod.credential", err.message)
      _, err = new{}
      assert.matches("profile file ~/.tencentcloud/credentials %[default%] needs both secret_id and secret_key",
        err.message)
      _, err = new{ profile = 7 }
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal("profile", err.field)
    end)
  end)

  describe("tccli", function()
    it("reads ~/.tccli/default.credential after the profile file", function()
      tccli_file('{"secretId": "TCCLIID", "secretKey": "' .. SECRET .. '", "token": "' .. TOKEN .. '"}')
      local c = get(assert(new{}))
      assert.same({ "TCCLIID", SECRET, TOKEN, "tccli ~/.tccli/default.credential" },
        { c.secret_id, c.secret_key, c.token, c.source })
      sdk_file("[default]\nsecret_id = SDKID\nsecret_key = SDKKEY\n")
      assert.equal("SDKID", get(assert(new{})).secret_id)
    end)

    it("takes the profile from the option, else TCCLI_PROFILE", function()
      tccli_file('{"secretId": "PRODID", "secretKey": "PK"}', "prod")
      tccli_file('{"secretId": "STAGEID", "secretKey": "SK"}', "stage")
      assert.equal("PRODID", get(assert(new{ profile = "prod" })).secret_id)
      assert.equal("STAGEID", get(assert(new{ getenv = env({ TCCLI_PROFILE = "stage" }) })).secret_id)
      assert.equal("PRODID", get(assert(new{ profile = "prod", getenv = env({ TCCLI_PROFILE = "stage" }) }))
        .secret_id)
      local _, err = new{ profile = "../etc/passwd" }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("not a file name", err.message)
    end)

    it("names a malformed file and never shows its contents", function()
      for _, text in ipairs({ '{"secretId": "X", "secretKey": "' .. SECRET .. '"', "[1, 2]",
        "secretKey=" .. SECRET, '{"secretKey": "' .. SECRET .. '"}' }) do
        tccli_file(text)
        local _, err = new{}
        assert.equal("ClientError.CredentialError", err.code)
        assert.matches("~/.tccli/default.credential", err.message, 1, true)
        assert.is_nil(err.message:find(SECRET, 1, true))
      end
    end)

    it("tccli_configure reads region, output, language and the iotexplorer endpoint", function()
      write(home .. "/.tccli/default.configure", '{"_sys_param": {"region": "ap-shanghai", "output": "table",'
        .. ' "language": "en-US"}, "iotexplorer": {"endpoint": "iotexplorer.ap-shanghai.tencentcloudapi.com",'
        .. ' "version": "2019-04-23"}}')
      local t = assert(credentials.tccli_configure(nil, { home = home, getenv = env({}) }))
      assert.same({ "ap-shanghai", "table", "en-US", "iotexplorer.ap-shanghai.tencentcloudapi.com" },
        { t.region, t.output, t.language, t.endpoint })
      -- no file: nothing configured, no error
      t = assert(credentials.tccli_configure("nope", { home = home, getenv = env({}) }))
      assert.same({ nil, nil }, { t.region, t.endpoint })
      write(home .. "/.tccli/bad.configure", '{"_sys_param": {"region": ["x"]}}')
      local _, err = credentials.tccli_configure(nil, { home = home, getenv = env({ TCCLI_PROFILE = "bad" }) })
      assert.matches("~/.tccli/bad.configure: _sys_param.region must be a string", err, 1, true)
      write(home .. "/.tccli/bad.configure", "not json " .. SECRET)
      _, err = credentials.tccli_configure("bad", { home = home, getenv = env({}) })
      assert.matches("~/.tccli/bad.configure is not a JSON object", err, 1, true)
      assert.is_nil(err:find(SECRET, 1, true))
    end)
  end)

  describe("precedence", function()
    local ENV = { TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "ENVKEY" }

    it("environment, then the profile file, then tccli", function()
      sdk_file("[default]\nsecret_id = SDKID\nsecret_key = K\n[prod]\nsecret_id = SDKPROD\nsecret_key = K\n")
      tccli_file('{"secretId": "TCCLIID", "secretKey": "K"}')
      assert.equal("ENVID", get(assert(new{ getenv = env(ENV) })).secret_id)
      assert.equal("SDKID", get(assert(new{})).secret_id)
    end)

    it("an explicit profile option wins over the environment", function()
      sdk_file("[prod]\nsecret_id = SDKPROD\nsecret_key = K\n")
      local c = get(assert(new{ profile = "prod", getenv = env(ENV) }))
      assert.equal("SDKPROD", c.secret_id)
      assert.equal("profile file ~/.tencentcloud/credentials [prod]", c.source)
      tccli_file('{"secretId": "TCCLIPROD", "secretKey": "K"}', "tprod")
      assert.equal("TCCLIPROD", get(assert(new{ profile = "tprod", getenv = env(ENV) })).secret_id)
      -- a profile named only by the environment does not outrank the environment's keys
      assert.equal("ENVID", get(assert(new{ getenv = env{ TENCENTCLOUD_SECRET_ID = "ENVID",
        TENCENTCLOUD_SECRET_KEY = "ENVKEY", TENCENTCLOUD_PROFILE = "prod" } })).secret_id)
    end)
  end)

  it("lists every source it tried and why, one line each, when none yields", function()
    local _, err = credentials.new{ getenv = env({ HOME = home }), metadata_endpoint = false }
    assert.equal("ClientError.CredentialError", err.code)
    local lines = {}
    for line in err.message:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("^no credentials found", lines[1])
    assert.equal("  environment: TENCENTCLOUD_SECRET_ID/KEY not set", lines[2])
    assert.equal("  profile file: not found at ~/.tencentcloud/credentials; not found at "
      .. credentials.SYSTEM_FILE, lines[3])
    assert.equal("  tccli: not found at ~/.tccli/default.credential", lines[4])
    assert.equal("  CVM role: off (metadata_endpoint = false)", lines[5])
    assert.matches("^  OIDC %(TKE%): TKE_PROVIDER_ID", lines[6])
    assert.equal(6, #lines)
  end)

  describe("expiry and refresh (credential_provider)", function()
    it("is asked on first use and its keys are not used within 300 s of their expiry", function()
      local calls, now = 0, 1000000
      local chain = assert(new{
        time = function() return now end,
        credential_provider = function()
          calls = calls + 1
          return "CUSTOM" .. calls, SECRET, TOKEN, now + 600
        end,
      })
      assert.equal(0, calls)
      local c = get(chain)
      assert.equal("CUSTOM1", c.secret_id)
      assert.equal("credential_provider", c.source)
      assert.equal("CUSTOM1", get(chain).secret_id)
      now = now + 299   -- 301 s left: still cached
      assert.equal("CUSTOM1", get(chain).secret_id)
      now = now + 2     -- 299 s left: refreshed
      assert.equal("CUSTOM2", get(chain).secret_id)
      assert.equal(2, calls)
    end)

    it("a refresh failure is an error naming the source once the old keys are too close to expiry", function()
      local now, fail = 1000000, false
      local chain = assert(new{ time = function() return now end, credential_provider = function()
        if fail then return nil, "vault sealed" end
        return "ID", SECRET, TOKEN, now + 400
      end })
      assert(get(chain))
      fail = true
      now = now + 101
      local c, err = get(chain)
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("credentials from credential_provider could not be refreshed: .*vault sealed", err.message)
    end)

    it("returns the provider's failures as errors, never raising", function()
      local _, err = get(assert(new{ credential_provider = function() error("vault down") end }))
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("vault down", err.message)
      _, err = get(assert(new{ credential_provider = function() return nil, "no lease" end }))
      assert.matches("no lease", err.message)
      _, err = get(assert(new{ credential_provider = function() return "ID", " " .. SECRET end }))
      assert.matches("whitespace", err.message)
    end)

    it("lets the chain go on when it has nothing", function()
      local chain = assert(new{ credential_provider = function() return nil end,
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "K" }) })
      assert.equal("ENVID", get(chain).secret_id)
    end)

    it("is refused alongside explicit keys, or when not a function", function()
      local _, err = new{ credential_provider = function() end, secret_id = "A", secret_key = "B" }
      assert.equal("ClientError.InvalidParameter", err.code)
      _, err = new{ credential_provider = "nope" }
      assert.equal("credential_provider", err.field)
    end)

    it("invalidate drops the keys and the same source is asked again", function()
      local calls = 0
      local chain = assert(new{ credential_provider = function()
        calls = calls + 1
        return "ID" .. calls, SECRET, nil, os.time() + 3600
      end })
      assert.equal("ID1", get(chain).secret_id)
      assert.is_true(chain:invalidate())
      assert.equal("ID2", get(chain).secret_id)
    end)
  end)

  describe("option checks", function()
    it("names the option at fault", function()
      local cases = {
        { { role_duration = 43201, role_arn = "qcs::cam::uin/1:roleName/r" }, "role_duration" },
        { { role_duration = 1.5, role_arn = "qcs::cam::uin/1:roleName/r" }, "role_duration" },
        { { role_session_name = "a b" }, "role_session_name" },
        { { role_session_name = "a" }, "role_session_name" },
        { { sts_endpoint = "sts.tencentcloudapi.com" }, "sts_endpoint" },
        { { sts_endpoint = "https://sts.tencentcloudapi.com/path" }, "sts_endpoint" },
        { { sts_region = "Guangzhou" }, "sts_region" },
        { { use_cvm_role = "yes" }, "use_cvm_role" },
        { { use_cvm_role = true, secret_id = "A", secret_key = "B" }, "use_cvm_role" },
        { { oidc_provider_id = "p" }, "oidc_token_file" },
        { { oidc_provider_id = "p", oidc_token_file = "/x" }, "role_arn" },
        { { metadata_endpoint = "ftp://x" }, "metadata_endpoint" },
        { { role_arn = "" }, "role_arn" },
      }
      for _, case in ipairs(cases) do
        local _, err = new(case[1])
        assert.equal("ClientError.InvalidParameter", err and err.code, case[2])
        assert.equal(case[2], err.field)
      end
    end)
  end)

  describe("CVM role", function()
    local meta

    setup(function()
      meta = metadata_server.start{ role = "iot-role", secret_id = "TMPID", secret_key = SECRET, token = TOKEN }
    end)

    teardown(function()
      meta:stop()
    end)

    before_each(function()
      meta:set{ role = "iot-role", expires_in = 7200, status = 200, code = "Success", reset = true }
    end)

    it("is fetched on first use, not when the chain is built, then cached", function()
      local chain = assert(new{ metadata_endpoint = meta.url })
      assert.same({ role = 0, creds = 0 }, meta:counters())
      local c = assert(get(chain))
      assert.same({ "TMPID", SECRET, TOKEN, "cvm role iot-role" }, { c.secret_id, c.secret_key, c.token, c.source })
      assert.is_true(c.expiration > os.time() + 7000)
      for _ = 1, 5 do assert(get(chain)) end
      assert.same({ role = 1, creds = 1 }, meta:counters())
    end)

    it("is refreshed 300 s before expiry", function()
      local now = os.time()
      local chain = assert(new{ metadata_endpoint = meta.url .. "/", time = function() return now end })
      meta:set{ expires_in = 400 }
      assert(get(chain))
      assert(get(chain))
      assert.equal(1, meta:counters().creds)
      now = now + 101 -- 299 s left
      meta:set{ secret_id = "TMPID2" }
      assert.equal("TMPID2", get(chain).secret_id)
      assert.same({ role = 1, creds = 2 }, meta:counters())
      meta:set{ secret_id = "TMPID" }
    end)

    it("keeps keys far from expiry when a refresh fails, never ones within 300 s of it", function()
      local now = os.time()
      local chain = assert(new{ metadata_endpoint = meta.url, time = function() return now end })
      meta:set{ expires_in = 7200 }
      assert.equal("TMPID", get(chain).secret_id)
      meta:set{ status = 500 }
      chain:invalidate()
      now = now + 7200 - 299 -- within 300 s of expiry
      local c, err = get(chain)
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("could not be refreshed: cvm role iot%-role: .*HTTP 500", err.message)
    end)

    it("refetches after invalidate (keys rejected by the server)", function()
      local chain = assert(new{ metadata_endpoint = meta.url })
      assert(get(chain))
      assert.is_true(chain:invalidate())
      assert(get(chain))
      assert.equal(2, meta:counters().creds)
    end)

    it("says so when the instance has no role, or the service answers no success", function()
      meta:set{ role = false }
      local _, err = get(new{ metadata_endpoint = meta.url })
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("CVM role: no CAM role bound to this instance", err.message)
      meta:set{ role = "iot-role", code = "Failure" }
      _, err = get(new{ metadata_endpoint = meta.url })
      assert.matches("did not return credentials", err.message)
    end)

    it("is unreachable at once when refused, after 1 s when silent, and says so", function()
      local socket = require("socket")
      local started = socket.gettime()
      local _, err = get(new{ metadata_endpoint = "http://127.0.0.1:" .. util.dead_port() })
      assert.matches("CVM role: metadata service unreachable %(", err.message)
      assert.is_true(socket.gettime() - started < 1.5)
      local s = socket.bind("127.0.0.1", 0) -- listens, never accepts or answers
      local _, port = s:getsockname()
      started = socket.gettime()
      _, err = get(new{ metadata_endpoint = "http://127.0.0.1:" .. port })
      local elapsed = socket.gettime() - started
      s:close()
      assert.matches("CVM role: metadata service unreachable", err.message)
      assert.is_true(elapsed >= 0.9 and elapsed < 2.5, "elapsed " .. elapsed)
    end)

    it("use_cvm_role uses it alone; tccli's \"type\": \"cvm-role\" means it", function()
      sdk_file("[default]\nsecret_id = SDKID\nsecret_key = K\n")
      local c = get(assert(new{ metadata_endpoint = meta.url, use_cvm_role = true,
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "K" }) }))
      assert.equal("cvm role iot-role", c.source)
      os.remove(home .. "/.tencentcloud/credentials")
      tccli_file('{"type": "cvm-role"}')
      c = get(assert(new{ metadata_endpoint = meta.url }))
      assert.same({ "TMPID", "tccli ~/.tccli/default.credential (cvm role iot-role)" }, { c.secret_id, c.source })
    end)
  end)
end)

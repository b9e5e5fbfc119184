-- The credential chain: each source, their order, the checks, and the CVM role
-- against a real metadata server on loopback (spec/helpers/metadata_server.lua).
local credentials = require("tencentcloud.iotexplorer.credentials")
local metadata_server = require("helpers.metadata_server")
local util = require("helpers.util")

local SECRET = "SpecSecretKeyValue0000000000000"
local TOKEN = "SpecTokenValue00000000000000000000000"

local function env(t)
  return function(name) return t[name] end
end

local write = util.write_file

local function no_secret(err)
  local s = tostring(err)
  assert.is_nil(s:find(SECRET, 1, true), s)
  assert.is_nil(s:find(TOKEN, 1, true), s)
end

describe("credentials", function()
  local tmp

  setup(function()
    tmp = util.tmpdir()
    util.check_output("mkdir -p '" .. tmp .. "/home/.tencentcloud' '" .. tmp .. "/etc'")
  end)

  teardown(function()
    util.rm_rf(tmp)
  end)

  -- Nothing from the real machine leaks into these tests.
  local function new(o)
    o.getenv = o.getenv or env({})
    if o.files == nil and o.home == nil then o.files = {} end
    if o.metadata_endpoint == nil then o.metadata_endpoint = false end
    return credentials.new(o)
  end

  describe("parse_ini", function()
    it("reads sections, trims values, skips comments and CRs", function()
      local s = credentials.parse_ini("# top\n[default]\r\nsecret_id = AKID1 \r\n; c\nsecret_key=K1\n\n"
        .. "[ prod ]\nsecret_id =AKID2\nsecret_key= K2\ntoken = T2\nbroken line\n")
      assert.same({ secret_id = "AKID1", secret_key = "K1" }, s.default)
      assert.same({ secret_id = "AKID2", secret_key = "K2", token = "T2" }, s.prod)
    end)
  end)

  describe("explicit", function()
    it("uses secret_id, secret_key and token as given", function()
      local chain = assert(new{ secret_id = "AKID", secret_key = SECRET, token = TOKEN })
      local c = assert(chain:get())
      assert.equal("AKID", c.secret_id)
      assert.equal(SECRET, c.secret_key)
      assert.equal(TOKEN, c.token)
      assert.equal("explicit", chain:source())
    end)

    it("wins over the environment and the profile file", function()
      write(tmp .. "/p1", "[default]\nsecret_id = FILEID\nsecret_key = FILEKEY\n")
      local chain = assert(new{
        secret_id = "AKID", secret_key = SECRET, files = { tmp .. "/p1" },
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "ENVKEY" }),
      })
      assert.equal("AKID", chain:get().secret_id)
    end)

    it("refuses half a pair", function()
      local chain, err = new{ secret_id = "AKID" }
      assert.is_nil(chain)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("both secret_id and secret_key", err.message)
      err = select(2, new{ secret_key = SECRET })
      assert.equal("ClientError.CredentialError", err.code)
      no_secret(err)
    end)

    it("refuses keys with surrounding whitespace, without showing them", function()
      for _, bad in ipairs({ " " .. SECRET, SECRET .. "\n", SECRET .. " ", "\t" .. SECRET }) do
        local chain, err = new{ secret_id = "AKID", secret_key = bad }
        assert.is_nil(chain)
        assert.equal("ClientError.CredentialError", err.code)
        assert.matches("secret_key has leading or trailing whitespace", err.message)
        no_secret(err)
      end
      local _, err = new{ secret_id = "AKID ", secret_key = SECRET }
      assert.matches("secret_id has leading or trailing whitespace", err.message)
      _, err = new{ secret_id = "AKID", secret_key = SECRET, token = TOKEN .. "\r\n" }
      assert.matches("token has leading or trailing whitespace", err.message)
      no_secret(err)
      _, err = new{ secret_id = "AKID", secret_key = "a\0b" }
      assert.matches("control character", err.message)
      _, err = new{ secret_id = "AKID", secret_key = "" }
      assert.matches("secret_key is empty", err.message)
      _, err = new{ secret_id = 12, secret_key = SECRET }
      assert.matches("secret_id must be a string", err.message)
    end)
  end)

  describe("environment", function()
    it("reads TENCENTCLOUD_SECRET_ID, _SECRET_KEY and _SESSION_TOKEN", function()
      local chain = assert(new{ getenv = env({
        TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET, TENCENTCLOUD_SESSION_TOKEN = TOKEN,
      }) })
      local c = chain:get()
      assert.same({ "ENVID", SECRET, TOKEN, "env" }, { c.secret_id, c.secret_key, c.token, chain:source() })
    end)

    it("treats an empty token as none", function()
      local chain = assert(new{ getenv = env({
        TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET, TENCENTCLOUD_SESSION_TOKEN = "",
      }) })
      assert.is_nil(chain:get().token)
    end)

    it("refuses half a pair and stray whitespace", function()
      local _, err = new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID" }) }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY", err.message)
      _, err = new{ getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = SECRET .. " " }) }
      assert.matches("TENCENTCLOUD_secret_key has leading or trailing whitespace", err.message)
      no_secret(err)
    end)

    it("wins over the profile file", function()
      write(tmp .. "/p2", "[default]\nsecret_id = FILEID\nsecret_key = FILEKEY\n")
      local chain = assert(new{ files = { tmp .. "/p2" },
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "ENVKEY" }) })
      assert.equal("ENVID", chain:get().secret_id)
    end)
  end)

  describe("profile file", function()
    it("reads ~/.tencentcloud/credentials [default]", function()
      write(tmp .. "/home/.tencentcloud/credentials", "[default]\nsecret_id = HOMEID\nsecret_key = " .. SECRET
        .. "\ntoken = " .. TOKEN .. "\n")
      local chain = assert(credentials.new{ metadata_endpoint = false, getenv = env({ HOME = tmp .. "/home" }) })
      local c = chain:get()
      assert.same({ "HOMEID", SECRET, TOKEN }, { c.secret_id, c.secret_key, c.token })
      assert.equal("profile:" .. tmp .. "/home/.tencentcloud/credentials", chain:source())
    end)

    it("falls back to the system file when the home file is missing or lacks the section", function()
      write(tmp .. "/etc/credentials", "[default]\nsecret_id = ETCID\nsecret_key = ETCKEY\n")
      write(tmp .. "/other", "[other]\nsecret_id = X\nsecret_key = Y\n")
      local chain = assert(new{ files = { tmp .. "/missing", tmp .. "/other", tmp .. "/etc/credentials" } })
      assert.equal("ETCID", chain:get().secret_id)
    end)

    it("picks the section from profile, else TENCENTCLOUD_PROFILE", function()
      write(tmp .. "/p3", "[default]\nsecret_id = D\nsecret_key = DK\n[prod]\nsecret_id = P\nsecret_key = PK\n"
        .. "[stage]\nsecret_id = S\nsecret_key = SK\n")
      assert.equal("P", new{ files = { tmp .. "/p3" }, profile = "prod" }:get().secret_id)
      assert.equal("S", new{ files = { tmp .. "/p3" }, getenv = env({ TENCENTCLOUD_PROFILE = "stage" }) }
        :get().secret_id)
      assert.equal("P", new{ files = { tmp .. "/p3" }, profile = "prod",
        getenv = env({ TENCENTCLOUD_PROFILE = "stage" }) }:get().secret_id)
    end)

    it("reads TENCENTCLOUD_CREDENTIALS_FILE instead of the usual places", function()
      write(tmp .. "/p4", "[default]\nsecret_id = OVERRIDE\nsecret_key = OK\n")
      write(tmp .. "/home/.tencentcloud/credentials", "[default]\nsecret_id = HOMEID\nsecret_key = HK\n")
      local chain = assert(credentials.new{ metadata_endpoint = false,
        getenv = env({ HOME = tmp .. "/home", TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/p4" }) })
      assert.equal("OVERRIDE", chain:get().secret_id)
      local _, err = credentials.new{ metadata_endpoint = false,
        getenv = env({ TENCENTCLOUD_CREDENTIALS_FILE = tmp .. "/nope" }) }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("TENCENTCLOUD_CREDENTIALS_FILE names .*/nope, which cannot be read", err.message)
    end)

    it("says which profile is missing or incomplete", function()
      write(tmp .. "/p5", "[default]\nsecret_id = D\n")
      local _, err = new{ files = { tmp .. "/p5" }, profile = "prod" }
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("profile %[prod%] not found", err.message)
      _, err = new{ files = { tmp .. "/p5" } }
      assert.matches("profile %[default%] in .*/p5: needs both secret_id and secret_key", err.message)
      write(tmp .. "/p6", "[default]\nsecret_id = D\nsecret_key = K\"\n")
      _, err = new{ files = { tmp .. "/p6" }, profile = 7 }
      assert.equal("ClientError.InvalidParameter", err.code)
    end)
  end)

  it("reports no credentials at all when every static source is empty and the CVM role is off", function()
    local chain, err = new{}
    assert.is_nil(chain)
    assert.equal("ClientError.CredentialError", err.code)
    assert.matches("no credentials", err.message)
  end)

  describe("custom provider", function()
    it("is asked on first use and cached until 300 s before its expiry", function()
      local calls, now = 0, 1000000
      local chain = assert(new{
        time = function() return now end,
        credential_provider = function()
          calls = calls + 1
          return "CUSTOM" .. calls, SECRET, TOKEN, now + 600
        end,
      })
      assert.equal(0, calls)
      assert.equal("CUSTOM1", chain:get().secret_id)
      assert.equal("CUSTOM1", chain:get().secret_id)
      assert.equal(1, calls)
      now = now + 299   -- 301 s left: still cached
      assert.equal("CUSTOM1", chain:get().secret_id)
      now = now + 2     -- 299 s left: refresh
      assert.equal("CUSTOM2", chain:get().secret_id)
      assert.equal(2, calls)
      assert.equal("custom", chain:source())
    end)

    it("returns its failures as errors, never raising", function()
      local chain = assert(new{ credential_provider = function() error("vault down") end })
      local c, err = chain:get()
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("vault down", err.message)
      chain = assert(new{ credential_provider = function() return nil, "no lease" end })
      err = select(2, chain:get())
      assert.matches("no lease", err.message)
      chain = assert(new{ credential_provider = function() return "ID", " " .. SECRET end })
      err = select(2, chain:get())
      assert.matches("whitespace", err.message)
      no_secret(err)
    end)

    it("lets the chain go on when it has nothing", function()
      local chain = assert(new{ credential_provider = function() return nil end,
        getenv = env({ TENCENTCLOUD_SECRET_ID = "ENVID", TENCENTCLOUD_SECRET_KEY = "K" }) })
      assert.equal("ENVID", chain:get().secret_id)
    end)

    it("is refused alongside explicit keys, or when not a function", function()
      local _, err = new{ credential_provider = function() end, secret_id = "A", secret_key = "B" }
      assert.equal("ClientError.InvalidParameter", err.code)
      _, err = new{ credential_provider = "nope" }
      assert.equal("credential_provider", err.field)
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
      local c = assert(chain:get())
      assert.same({ "TMPID", SECRET, TOKEN }, { c.secret_id, c.secret_key, c.token })
      assert.is_true(c.expiration > os.time() + 7000)
      assert.equal("cvm_role", chain:source())
      for _ = 1, 5 do assert(chain:get()) end
      assert.same({ role = 1, creds = 1 }, meta:counters())
    end)

    it("is refreshed 300 s before expiry", function()
      local now = os.time()
      local chain = assert(new{ metadata_endpoint = meta.url .. "/", time = function() return now end })
      meta:set{ expires_in = 400 }
      assert(chain:get())
      assert(chain:get())
      assert.equal(1, meta:counters().creds)
      now = now + 101 -- 299 s left
      meta:set{ secret_id = "TMPID2" }
      assert.equal("TMPID2", chain:get().secret_id)
      assert.same({ role = 1, creds = 2 }, meta:counters())
      meta:set{ secret_id = "TMPID" }
    end)

    it("keeps using keys that are about to expire when the refresh fails, not ones that did", function()
      local now = os.time()
      local chain = assert(new{ metadata_endpoint = meta.url, time = function() return now end })
      meta:set{ expires_in = 400 }
      assert.equal("TMPID", chain:get().secret_id)
      meta:set{ status = 500 }
      now = now + 200      -- inside the refresh window, still valid
      assert.equal("TMPID", chain:get().secret_id)
      now = now + 300      -- expired
      local c, err = chain:get()
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("HTTP 500", err.message)
      no_secret(err)
    end)

    it("refetches after invalidate (keys rejected by the server)", function()
      local chain = assert(new{ metadata_endpoint = meta.url })
      assert(chain:get())
      chain:invalidate()
      assert(chain:get())
      assert.equal(2, meta:counters().creds)
    end)

    it("says so when the instance has no role, or the service answers no success", function()
      meta:set{ role = false }
      local _, err = new{ metadata_endpoint = meta.url }:get()
      assert.equal("ClientError.CredentialError", err.code)
      assert.matches("no CAM role", err.message)
      meta:set{ role = "iot-role", code = "Failure" }
      _, err = new{ metadata_endpoint = meta.url }:get()
      assert.matches("did not return credentials", err.message)
      no_secret(err)
    end)

    it("fails fast when the metadata service is unreachable", function()
      local socket = require("socket")
      local port = util.dead_port()   -- connection refused at once
      local started = socket.gettime()
      local _, err = new{ metadata_endpoint = "http://127.0.0.1:" .. port }:get()
      assert.equal("ClientError.CredentialError", err.code)
      assert.is_true(socket.gettime() - started < 1.5)
    end)

    it("times out after 1 s when the metadata service does not answer", function()
      local socket = require("socket")
      local s = socket.bind("127.0.0.1", 0) -- listens, never accepts or answers
      local _, port = s:getsockname()
      local started = socket.gettime()
      local _, err = new{ metadata_endpoint = "http://127.0.0.1:" .. port }:get()
      local elapsed = socket.gettime() - started
      s:close()
      assert.equal("ClientError.CredentialError", err.code)
      assert.is_true(elapsed >= 0.9 and elapsed < 2.5, "elapsed " .. elapsed)
    end)

    it("refuses a metadata endpoint that is not http://", function()
      local _, err = new{ metadata_endpoint = "ftp://x" }
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal("metadata_endpoint", err.field)
    end)
  end)
end)

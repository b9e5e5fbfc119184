-- TLS: a CA and server certificates made by this run (openssl CLI), served on loopback by a TLS
-- front (our own nginx) before the emulator (helpers/tls.lua).
--   - success with ca_file (and with ca_path);
--   - ClientError.NetworkError naming the certificate problem for an unknown CA, a wrong host name and an
--     expired certificate;
--   - no switch turns verification off, by default or through the environment: a subprocess with every
--     variable we could think of still refuses the unknown CA.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local secrets = require("helpers.secrets")
local tls = require("helpers.tls")
local util = require("helpers.util")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local shell_quote = util.shell_quote

-- What libcurl says for each problem (after "SSL peer certificate ... was not OK (curl 60): ").
local UNKNOWN_CA = "unable to get local issuer certificate"
local WRONG_HOST = "no alternative certificate subject name matches target host name"
local EXPIRED = "certificate has expired"

describe("TLS", function()
  local emu, front, watch

  local function new(o)
    o = secrets.credentials(o or {})
    o.region = "ap-guangzhou"
    o.metadata_endpoint = false
    o.rate_limit = false
    o.timeout, o.connect_timeout = 3, 2
    o.backoff_base, o.backoff_cap = 0.01, 0.02
    o.logger = watch:logger()
    local c, err = iot.new(o)
    watch:see(c, err)
    return assert(c, tostring(err))
  end

  local function describe_through(o)
    local c = new(o)
    local res, err = c:describe_batch_production(DESCRIBE, { deadline = 5 })
    watch:see(res, err)
    c:close()
    return res, err
  end

  setup(function()
    emu = emulator.start{ fixture = secrets.fixture() }
    front = tls.start{ upstream = emu.url }
    watch = secrets.watch()
  end)

  teardown(function()
    if front then front:stop() end
    if emu then emu:stop() end
  end)

  before_each(function() emu:reset() end)

  it("succeeds with ca_file naming our CA, by IP address and by host name", function()
    for _, endpoint in ipairs{ front.urls.good, "https://localhost:" .. front.ports.good } do
      local res, err = describe_through{ endpoint = endpoint, ca_file = front.ca_file }
      assert.is_nil(err)
      assert.equal(3, res.BatchCnt)
    end
    -- Through the front: the signed Host header reached the emulator as the client sent it.
    assert.equal("localhost:" .. front.ports.good, emu:counters().last_headers.host)
  end)

  it("succeeds with ca_path naming a hashed folder holding our CA", function()
    local dir = front.dir .. "/capath"
    util.check_output("mkdir -p " .. shell_quote(dir) .. " && cp " .. shell_quote(front.ca_file) .. " "
      .. shell_quote(dir) .. " && env -u LD_PRELOAD openssl rehash " .. shell_quote(dir) .. " >/dev/null 2>&1")
    local res, err = describe_through{ endpoint = front.urls.good, ca_path = dir }
    assert.is_nil(err)
    assert.equal(3, res.BatchCnt)
  end)

  local function assert_refused(err, problem, what)
    assert.is_true(iot.is_error(err), what)
    assert.equal("ClientError.NetworkError", err.code, what)
    assert.truthy(err.message:find(problem, 1, true), what .. ": the message does not name the problem: "
      .. err.message)
    assert.equal(60, err.curl_code, what)
    assert.is_false(err.sent, what)   -- the handshake failed: not a byte of the request went out
  end

  it("refuses an unknown CA (no ca_file: the system store does not know ours)", function()
    local res, err = describe_through{ endpoint = front.urls.good, max_attempts = 1 }
    assert.is_nil(res)
    assert_refused(err, UNKNOWN_CA, "unknown CA")
    assert.equal(0, emu:counters().requests)
  end)

  it("refuses a certificate for another host name, though our CA signed it", function()
    local res, err = describe_through{ endpoint = front.urls.wrong_host, ca_file = front.ca_file, max_attempts = 1 }
    assert.is_nil(res)
    assert_refused(err, WRONG_HOST, "wrong host")
    assert.truthy(err.message:find("127.0.0.1", 1, true))
    assert.equal(0, emu:counters().requests)
  end)

  it("refuses an expired certificate, though our CA signed it", function()
    local res, err = describe_through{ endpoint = front.urls.expired, ca_file = front.ca_file, max_attempts = 1 }
    assert.is_nil(res)
    assert_refused(err, EXPIRED, "expired")
    assert.equal(0, emu:counters().requests)
  end)

  it("retries a refused handshake like any connection failure, then reports it", function()
    local res, err = describe_through{ endpoint = front.urls.expired, ca_file = front.ca_file, max_attempts = 2 }
    assert.is_nil(res)
    assert_refused(err, EXPIRED, "expired")
    assert.equal(2, err.attempts)
  end)

  it("the core alone refuses the same three, and a ca_file that is not a CA bundle", function()
    local req = { secret_id = secrets.SECRET_ID, secret_key = secrets.SECRET_KEY, token = secrets.TOKEN,
      action = "DescribeBatchProduction", version = "2019-04-23",
      params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } }
    local function session(url, ca_file)
      local host, port = url:match("^https://([^:/]+):(%d+)")
      return assert(core.new_session{ scheme = "https", host = host, port = tonumber(port), region = "ap-guangzhou",
        timeout = 3, ca_file = ca_file })
    end
    for _, case in ipairs{
      { nil, front.urls.good, UNKNOWN_CA },
      { front.ca_file, front.urls.wrong_host, WRONG_HOST },
      { front.ca_file, front.urls.expired, EXPIRED },
      { front.dir .. "/good.key", front.urls.good, "" },
      { front.dir .. "/no-such-file.pem", front.urls.good, "" },
    } do
      local s = session(case[2], case[1])
      local res, err = core.call(s, req)
      s:close()
      watch:see(res, err)
      assert.is_nil(res)
      assert.equal("ClientError.NetworkError", err.code)
      assert.truthy(err.message:find(case[3], 1, true), err.message)
    end
    local ours = session(front.urls.good, front.ca_file)
    assert(core.call(ours, req))
    ours:close()
  end)

  describe("no switch turns verification off", function()
    -- Variables that turn verification off (or empty the trust store) in other tools, and names a user
    -- might guess for this library. None may make the unknown CA acceptable.
    local ENV = {
      CURL_CA_BUNDLE = "", CURL_SSL_NO_VERIFY = "1", CURLOPT_SSL_VERIFYPEER = "0", CURL_INSECURE = "1",
      SSL_CERT_FILE = "/dev/null", SSL_CERT_DIR = "/nonexistent", SSL_NO_VERIFY = "1",
      REQUESTS_CA_BUNDLE = "", PYTHONHTTPSVERIFY = "0", NODE_TLS_REJECT_UNAUTHORIZED = "0",
      GIT_SSL_NO_VERIFY = "1", OPENSSL_CONF = "/dev/null", HTTPS_PROXY = "", https_proxy = "",
      TENCENTCLOUD_SSL_VERIFY = "false", TENCENTCLOUD_SKIP_VERIFY = "1", TENCENTCLOUD_INSECURE = "1",
      TENCENTCLOUD_VERIFY = "0", TENCENTCLOUD_CA_FILE = "", TENCENTCLOUD_TLS_VERIFY = "0",
      TENCENTCLOUD_SDK_INSECURE = "true", TCIOT_INSECURE = "1", TCIOT_SSL_VERIFY = "0", TCIOT_NO_VERIFY = "1",
      IOTEXPLORER_INSECURE = "1", LUA_SSL_VERIFY = "0",
    }

    -- A child process of the same interpreter: the client and the core against the unknown CA.
    local CHILD = [[
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local endpoint = arg[1]
local c = assert(iot.new{ region = "ap-guangzhou", endpoint = endpoint, secret_id = arg[2], secret_key = arg[3],
  token = arg[4], metadata_endpoint = false, max_attempts = 1, timeout = 3 })
local res, err = c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
print("client", res and "ACCEPTED" or err.code, res and "" or err.message)
local host, port = endpoint:match("^https://([^:/]+):(%d+)")
local s = assert(core.new_session{ scheme = "https", host = host, port = tonumber(port), region = "ap-guangzhou",
  timeout = 3 })
res, err = core.call(s, { secret_id = arg[2], secret_key = arg[3], token = arg[4], action = "DescribeBatchProduction",
  version = "2019-04-23", params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } })
print("core", res and "ACCEPTED" or err.code, res and "" or err.message)
]]

    local function run_child(env)
      local script = front.dir .. "/child.lua"
      util.write_file(script, CHILD)
      local _, out = util.run("cd " .. shell_quote(util.ROOT) .. " && " .. util.lua_command(script,
        { front.urls.good, secrets.SECRET_ID, secrets.SECRET_KEY, secrets.TOKEN }, { env = env }))
      return out
    end

    it("with none of the variables set (the default)", function()
      local out = run_child{}
      watch:text("child output", out)
      assert.truthy(out:find("client\tClientError.NetworkError", 1, true), out)
      assert.truthy(out:find("core\tClientError.NetworkError", 1, true), out)
      assert.truthy(out:find(UNKNOWN_CA, 1, true), out)
      assert.falsy(out:find("ACCEPTED", 1, true), out)
    end)

    it("with every variable that turns verification off elsewhere set at once", function()
      local out = run_child(ENV)
      watch:text("child output", out)
      assert.truthy(out:find("client\tClientError.NetworkError", 1, true), out)
      assert.truthy(out:find("core\tClientError.NetworkError", 1, true), out)
      assert.falsy(out:find("ACCEPTED", 1, true), out)
    end)

    it("the library offers no option to turn it off", function()
      for _, name in ipairs{ "insecure", "verify", "ssl_verify", "verify_peer", "verify_host", "ssl_verifypeer",
        "skip_verify", "tls_verify", "no_verify" } do
        local c, err = iot.new(secrets.credentials{ region = "ap-guangzhou", endpoint = front.urls.good,
          metadata_endpoint = false, [name] = false })
        assert.is_nil(c, name .. " was accepted")
        assert.equal(name, err.field)
        -- The core raises for an option it does not know.
        assert.has_error(function() core.new_session{ [name] = false } end, nil, name)
      end
    end)
  end)

  it("no secret key or token in anything the TLS failures produced", function()
    watch:assert_clean()
  end)
end)

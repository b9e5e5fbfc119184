-- core.http_get against a real metadata server on loopback (spec/helpers/metadata_server.lua): the small
-- plain-HTTP GET the CVM role credentials use. Never through a proxy, bounded, and strict about misuse.
local core = require("tencentcloud.iotexplorer.core")
local metadata_server = require("helpers.metadata_server")
local socket = require("socket")
local util = require("helpers.util")

local PREFIX = "/latest/meta-data/cam/security-credentials/"

describe("core.http_get", function()
  local meta

  setup(function()
    meta = metadata_server.start{ role = "iot-role", secret_id = "TMPID", secret_key = "TMPKEY", token = "TMPTOKEN" }
  end)
  teardown(function() meta:stop() end)
  before_each(function() meta:reset() end)

  it("returns the body and the status", function()
    local body, status = core.http_get(meta.url .. PREFIX, { timeout = 2, connect_timeout = 1 })
    assert.are.equal("iot-role", body)
    assert.are.equal(200, status)
    local creds = assert(core.http_get(meta.url .. PREFIX .. "iot-role", {
      headers = { "Accept: application/json" } }))
    assert.truthy(creds:find('"TmpSecretId"', 1, true))
    assert.are.same({ role = 1, creds = 1 }, meta:counters())
  end)

  it("returns a non-2xx answer as it is, for the caller to judge", function()
    meta:set{ role = false }
    local body, status = core.http_get(meta.url .. PREFIX)
    meta:set{ role = "iot-role" }
    assert.are.equal(404, status)
    assert.are.equal("string", type(body))
  end)

  it("never goes through a proxy, whatever the environment says", function()
    local dead = "http://127.0.0.1:" .. util.dead_port()
    local dir = util.tmpdir()
    local script = dir .. "/child.lua"
    util.write_file(script, [[
local core = require("tencentcloud.iotexplorer.core")
local body, status = core.http_get(arg[1], { timeout = 2 })
print(tostring(body) .. " " .. tostring(status and status or body.code))
]])
    local ok, out = util.run("cd " .. util.shell_quote(util.ROOT) .. " && " .. util.lua_command(script,
      { meta.url .. PREFIX }, { env = { http_proxy = dead, HTTP_PROXY = dead, ALL_PROXY = dead, all_proxy = dead,
        NO_PROXY = "", no_proxy = "" } }))
    util.rm_rf(dir)
    assert.is_true(ok, out)
    assert.are.equal("iot-role 200\n", out)
  end)

  it("ClientError.ResponseTooLarge past max_bytes", function()
    local body, err = core.http_get(meta.url .. PREFIX .. "iot-role", { max_bytes = 16 })
    assert.is_nil(body)
    assert.are.equal("ClientError.ResponseTooLarge", err.code)
    assert.is_true(err.sent)
  end)

  it("ClientError.NetworkError, sent = false, when nothing listens", function()
    local body, err = core.http_get("http://127.0.0.1:" .. util.dead_port() .. "/", { timeout = 2 })
    assert.is_nil(body)
    assert.are.equal("ClientError.NetworkError", err.code)
    assert.is_false(err.sent)
  end)

  it("ClientError.Timeout within the timeout when the server never answers", function()
    local server = assert(socket.bind("127.0.0.1", 0))   -- the kernel accepts; nobody ever answers
    local _, port = server:getsockname()
    local started = core.now()
    local body, err = core.http_get("http://127.0.0.1:" .. port .. "/", { timeout = 0.3, connect_timeout = 0.3 })
    local elapsed = core.now() - started
    server:close()
    assert.is_nil(body)
    assert.are.equal("ClientError.Timeout", err.code)
    assert.is_true(elapsed < 2, "took " .. elapsed .. " s")
  end)

  it("raises on misuse: not http://, bad options, header lines that would inject", function()
    for _, args in ipairs{
      { "https://127.0.0.1/" }, { "ftp://127.0.0.1/" }, { "127.0.0.1" }, { 42 },
      { meta.url .. "/\r\nX-Evil: 1" },
      { meta.url, { timeout = -1 } }, { meta.url, { max_bytes = 0 } }, { meta.url, { proxy = "x" } },
      { meta.url, { headers = "Accept: x" } }, { meta.url, { headers = { "Accept: x\r\nX-Evil: 1" } } },
      { meta.url, { headers = { "no colon" } } }, { meta.url, "opts" },
    } do
      assert.has_error(function() core.http_get(args[1], args[2]) end)
    end
    assert.are.same({ role = 0, creds = 0 }, meta:counters())
  end)
end)

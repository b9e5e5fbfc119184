-- tciot configure list: the resolved profile and values, where each came from, secrets masked.
local configure = require("tencentcloud.iotexplorer.cli.configure")
local secrets = require("helpers.secrets")
local util = require("helpers.util")

describe("configure list", function()
  local tmp, home

  setup(function()
    tmp = util.tmpdir()
    home = tmp .. "/home"
    util.check_output("mkdir -p '" .. home .. "/.tccli' '" .. home .. "/.tencentcloud'")
  end)

  teardown(function()
    util.rm_rf(tmp)
  end)

  -- Runs list; returns the exit code, the lines and the lines as one text (checked for secrets).
  local function list(options, vars)
    local lines = {}
    vars = vars or {}
    local code = configure.list(options, function(l) lines[#lines + 1] = l end,
      { home = home, getenv = function(k) return vars[k] end })
    local text = table.concat(lines, "\n")
    assert.is_nil(secrets.find(text), text)
    return code, lines, text
  end

  local function line(lines, name)
    for _, l in ipairs(lines) do
      if l:find("^" .. name .. " ") then return l end
    end
  end

  it("masks every secret to its last 4 characters and names each value's source", function()
    local code, lines = list({ region = "ap-shanghai" }, { TENCENTCLOUD_SECRET_ID = secrets.SECRET_ID,
      TENCENTCLOUD_SECRET_KEY = secrets.SECRET_KEY, TENCENTCLOUD_TOKEN = secrets.TOKEN })
    assert.equal(0, code)
    assert.matches("^profile%s+default%s+default$", line(lines, "profile"))
    assert.matches("^secret_id%s+%*%*%*%*0001%s+environment$", line(lines, "secret_id"))
    assert.matches("^secret_key%s+%*%*%*%*" .. secrets.SECRET_KEY:sub(-4) .. "%s+environment$",
      line(lines, "secret_key"))
    assert.matches("^token%s+%*%*%*%*" .. secrets.TOKEN:sub(-4) .. "%s+environment$", line(lines, "token"))
    assert.matches("^region%s+ap%-shanghai%s+%-%-region$", line(lines, "region"))
    assert.matches("^output%s+json%s+default$", line(lines, "output"))
    assert.matches("^endpoint%s+https://iotexplorer.tencentcloudapi.com%s+default$", line(lines, "endpoint"))
    assert.matches("^language%s+<not set>$", line(lines, "language"))
  end)

  it("takes region, output, endpoint and language from tccli's configure file, the keys from its credential", function()
    util.write_file(home .. "/.tccli/prod.configure", '{"_sys_param": {"region": "ap-bangkok", "output": "table",'
      .. ' "language": "en-US"}, "iotexplorer": {"endpoint": "iotexplorer.ap-bangkok.tencentcloudapi.com"}}')
    util.write_file(home .. "/.tccli/prod.credential", '{"secretId": "' .. secrets.SECRET_ID .. '", "secretKey": "'
      .. secrets.SECRET_KEY .. '"}')
    local code, lines = list({ profile = "prod" }, { TENCENTCLOUD_REGION = "ap-guangzhou" })
    assert.equal(0, code)
    assert.matches("^profile%s+prod%s+%-%-profile$", line(lines, "profile"))
    assert.matches("tccli ~/.tccli/prod.credential$", line(lines, "secret_key"))
    assert.matches("^token%s+<not set>$", line(lines, "token"))
    assert.matches("^region%s+ap%-guangzhou%s+environment TENCENTCLOUD_REGION$", line(lines, "region"))
    assert.matches("^output%s+table%s+tccli ~/.tccli/prod.configure$", line(lines, "output"))
    assert.matches("^endpoint%s+iotexplorer.ap%-bangkok", line(lines, "endpoint"))
    assert.matches("^language%s+en%-US%s+tccli", line(lines, "language"))
  end)

  it("exits 2 and says why when no credentials are configured", function()
    local code, lines, text = list({}, {})
    assert.equal(2, code)
    assert.matches("^secret_id%s+<not set>", line(lines, "secret_id"))
    assert.matches("environment: TENCENTCLOUD_SECRET_ID/KEY not set", text)
    assert.matches("tccli: not found at ~/.tccli/default.credential", text, 1, true)
  end)

  it("takes tciot's dashed option names and a file to write to", function()
    local written = {}
    local file = { write = function(_, ...) for _, s in ipairs({ ... }) do written[#written + 1] = s end end }
    local code = configure.list({ ["role-arn"] = "qcs::cam::uin/1:roleName/r", ["use-cvm-role"] = true }, file,
      { home = home, getenv = function() return nil end })
    assert.equal(0, code)
    local text = table.concat(written)
    assert.matches("\nrole_arn%s+qcs::cam::uin/1:roleName/r%s+%-%-role%-arn", text)
    assert.matches("\nsecret_id%s+<not set>%s+the CVM role", text)
  end)

  it("names a broken tccli file without showing it", function()
    util.write_file(home .. "/.tccli/broken.configure", "{" .. secrets.SECRET_KEY)
    local code, _, text = list({ profile = "broken" }, {})
    assert.equal(2, code)
    assert.matches("~/.tccli/broken.configure is not a JSON object", text, 1, true)
  end)
end)

-- Each fact about the API and each default has one home; everything else reads it from there. A second
-- copy is a future bug, so this spec looks for the literal values in the product's code (src/, lua/, bin/).
local util = require("helpers.util")

-- Files under src/, lua/ and bin/ whose text contains `needle`, sorted.
local function files_with(needle)
  local ok, out = util.run("cd " .. util.shell_quote(util.ROOT) .. " && grep -rlF -e " .. util.shell_quote(needle)
    .. " src lua bin | sort")
  assert(ok or out == "", out)
  local list = {}
  for line in out:gmatch("[^\n]+") do
    list[#list + 1] = line
  end
  return list
end

describe("one home for each fact", function()
  local FACTS = {
    { "the API version", '"2019-04-23"', { "lua/tencentcloud/iotexplorer/actions.lua" } },
    { "the batch regions", '"ap-shanghai-fsi"', { "lua/tencentcloud/iotexplorer/actions.lua" } },
    { "the service host", '"iotexplorer.tencentcloudapi.com"', { "lua/tencentcloud/iotexplorer/actions.lua" } },
    { "the STS version", '"2018-08-13"', { "lua/tencentcloud/iotexplorer/actions.lua" } },
    { "the endpoint variable", '"TENCENTCLOUD_IOTEXPLORER_ENDPOINT"', { "lua/tencentcloud/iotexplorer/defaults.lua" } },
  }
  for _, f in ipairs(FACTS) do
    it(f[1] .. " is written in " .. table.concat(f[3], ", ") .. " only", function()
      assert.same(f[3], files_with(f[2]))
    end)
  end

  it("the default timeouts are written once", function()
    assert.same({ "lua/tencentcloud/iotexplorer/defaults.lua" }, files_with("timeout = 10,"))
  end)

  it("the jitter generator and the deadline error are written once", function()
    assert.same({ "lua/tencentcloud/iotexplorer/retry.lua" }, files_with("48271"))
    assert.same({ "lua/tencentcloud/iotexplorer/errors.lua" }, files_with("deadline of %gs passed"))
  end)
end)

-- The rockspec lists every Lua module in lua/, and LuaRocks builds and installs a working tree from it.
local util = require("helpers.util")

local ROCKSPEC = "tencentcloud-iotexplorer-scm-1.rockspec"

local function load_rockspec()
  local env = {}
  local chunk = assert(loadfile and (setfenv and loadfile(ROCKSPEC) or loadfile(ROCKSPEC, "t", env)))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env
end

local run = util.run

describe("rockspec", function()
  it("lists every module under lua/ by its require name, and the tool", function()
    local spec = load_rockspec()
    local listed = {}
    for name, source in pairs(spec.build.modules) do
      if type(source) == "string" then listed[source] = name end
    end
    local ok, files = run("cd lua && find tencentcloud -name '*.lua' ! -name run.lua | sort")
    assert.is_true(ok)
    local count = 0
    for path in files:gmatch("[^\n]+") do
      count = count + 1
      local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.are.equal(name, listed["lua/" .. path], "rockspec entry for lua/" .. path)
    end
    assert.is_true(count >= 10)
    assert.are.equal("bin/tciot", spec.build.install.bin.tciot)
    assert.are.equal("builtin", spec.build.type)
  end)

  -- One interpreter is enough: this exercises LuaRocks, not the VM.
  local it_54 = _VERSION == "Lua 5.4" and type(jit) ~= "table" and it or pending
  it_54("builds and installs with luarocks make, and the installed module and tool work", function()
    local tree = util.tmpdir()
    local ok, out = run(("luarocks --lua-version=5.4 --tree %s make --deps-mode=none %s"):format(tree, ROCKSPEC))
    assert.is_true(ok, out)
    ok, out = run(("lua5.4 -e 'package.path=\"%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;\"..package.path;"
      .. "package.cpath=\"%s/lib/lua/5.4/?.so;\"..package.cpath;"
      .. "local iot=require(\"tencentcloud.iotexplorer\");"
      .. "print(iot._VERSION, require(\"tencentcloud.iotexplorer.core\")._VERSION)'"):format(tree, tree, tree))
    assert.is_true(ok, out)
    assert.truthy(out:find("^0%.%d+%.%d+\t0%.%d+%.%d+"))
    -- A tree off the default paths is found the way LuaRocks tells users: through `luarocks path`.
    ok, out = run(("eval \"$(luarocks --lua-version=5.4 --tree %s path)\" && %s/bin/tciot --help"):format(tree, tree))
    assert.is_true(ok, out)
    assert.truthy(out:find("DescribeBatchProduction", 1, true))
    util.rm_rf(tree)
  end)
end)

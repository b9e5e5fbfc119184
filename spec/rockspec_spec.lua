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

  -- One interpreter is enough: this exercises LuaRocks and the installed layouts, not the VM.
  local it_54 = _VERSION == "Lua 5.4" and type(jit) ~= "table" and it or pending
  local q = util.shell_quote
  local VERSION_LINE = "^tciot %d+%.%d+%.%d+ %(core %d+%.%d+%.%d+%) on Lua 5%.4\n$"

  -- `tciot --version` from a fresh environment (no LUA_PATH, no luarocks path, HOME elsewhere), directly and
  -- through a symlink in another folder: the script finds its own library from its real location.
  local function runs_everywhere(tciot, work)
    local fresh = "env -i PATH=/usr/bin:/bin HOME=" .. q(work .. "/nohome") .. " "
    local ok, out = run(fresh .. q(tciot) .. " --version")
    assert.is_true(ok, out)
    assert.matches(VERSION_LINE, out)
    assert(util.execute("mkdir -p " .. q(work .. "/elsewhere") .. " && ln -sf " .. q(tciot) .. " "
      .. q(work .. "/elsewhere/tciot")))
    ok, out = run(fresh .. q(work .. "/elsewhere/tciot") .. " --version")
    assert.is_true(ok, out)
    assert.matches(VERSION_LINE, out)
    -- The library it loaded is the one next to it, not one on the default paths.
    ok, out = run(fresh .. q(work .. "/elsewhere/tciot") .. " DescribeBatchProduction --help")
    assert.is_true(ok, out)
  end

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
    -- Through LuaRocks' wrapper, without `luarocks path`; and the rock's own copy of the script, symlinked.
    runs_everywhere(tree .. "/bin/tciot", tree)
    local inner = util.check_output("ls " .. q(tree) .. "/lib/luarocks/rocks-5.4/tencentcloud-iotexplorer/*/bin/tciot")
    assert(util.execute("ln -s " .. q(inner:gsub("%s+$", "")) .. " " .. q(tree .. "/inner")))
    ok, out = run("env -i PATH=/usr/bin:/bin lua5.4 " .. q(tree .. "/inner") .. " --version")
    assert.is_true(ok, out)
    assert.matches(VERSION_LINE, out)
    util.rm_rf(tree)
  end)

  it_54("installs into --local (~/.luarocks) and runs from there", function()
    local home = util.tmpdir()
    local ok, out = run(("HOME=%s luarocks --lua-version=5.4 --local make --deps-mode=none %s"):format(q(home),
      ROCKSPEC))
    assert.is_true(ok, out)
    runs_everywhere(home .. "/.luarocks/bin/tciot", home)
    util.rm_rf(home)
  end)

  it_54("installs with make install PREFIX= and runs from there", function()
    local prefix = util.tmpdir()
    local ok, out = run(("make -s --no-print-directory install LUA=lua5.4 PREFIX=%s"):format(q(prefix)))
    assert.is_true(ok, out)
    runs_everywhere(prefix .. "/bin/tciot", prefix)
    util.rm_rf(prefix)
  end)

  it_54("make dist writes a rockspec that luarocks install takes from any folder", function()
    local dist = util.tmpdir()
    local ok, out = run(("make -s --no-print-directory dist DIST_DIR=%s"):format(q(dist)))
    assert.is_true(ok, out)
    local spec = util.check_output("ls " .. q(dist) .. "/*.rockspec"):gsub("%s+$", "")
    local tree = dist .. "/tree"
    ok, out = run(("cd / && luarocks --lua-version=5.4 --tree %s install --deps-mode=none %s"):format(q(tree),
      q(spec)))
    assert.is_true(ok, out)
    runs_everywhere(tree .. "/bin/tciot", dist)
    -- The .src.rock carries its archive: it installs without the network or the archive next to it.
    local rock = util.check_output("ls " .. q(dist) .. "/*.src.rock"):gsub("%s+$", "")
    ok, out = run(("cd / && luarocks --lua-version=5.4 --tree %s install --deps-mode=none %s"):format(
      q(dist .. "/tree2"), q(rock)))
    assert.is_true(ok, out)
    runs_everywhere(dist .. "/tree2/bin/tciot", dist)
    util.rm_rf(dist)
  end)
end)

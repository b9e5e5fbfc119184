-- What the library needs at run time is declared in the rockspec; what only the emulator needs is named
-- when it is missing, with the line that installs it.
local util = require("helpers.util")

describe("runtime dependencies", function()
  it("are all declared in the rockspec", function()
    local text = assert(util.read_file(util.ROOT .. "/tencentcloud-iotexplorer-scm-1.rockspec"))
    local deps = text:match("dependencies = (%b{})")
    for _, name in ipairs({ "lua-cjson", "luasocket", "luaossl" }) do
      assert.truthy(deps:find('"' .. name .. '"', 1, true), name)
    end
  end)

  it("the emulator says what to install when LuaSocket is missing", function()
    local script = util.ROOT .. "/build/nosocket.lua"
    util.write_file(script, table.concat({
      'package.path = "' .. util.ROOT .. '/lua/?.lua;' .. util.ROOT .. '/lua/?/init.lua;" .. package.path',
      'package.preload["socket"] = function() error("module \'socket\' not found") end',
      'local ok, err = pcall(require, "tencentcloud.iotexplorer.emulator")',
      'io.write(tostring(ok), " ", tostring(err))',
    }, "\n"))
    local _, out = util.run(util.INTERPRETER .. " " .. util.shell_quote(script))
    os.remove(script)
    assert.truthy(out:find("false the emulator needs LuaSocket and luaossl", 1, true), out)
    assert.truthy(out:find("apt-get install lua-socket lua-luaossl", 1, true), out)
  end)

  it("the client loads without LuaSocket or luaossl", function()
    local script = util.ROOT .. "/build/noemulatordeps.lua"
    util.write_file(script, table.concat({
      'package.path = "' .. util.ROOT .. '/lua/?.lua;' .. util.ROOT .. '/lua/?/init.lua;" .. package.path',
      'package.cpath = "' .. util.ROOT .. '/build/' .. (util.INTERPRETER == "luajit" and "luajit" or "lua5.4")
        .. '/?.so;" .. package.cpath',
      'for _, m in ipairs({ "socket", "openssl.rand", "openssl.digest", "openssl.hmac" }) do',
      '  package.preload[m] = function() error("module \'" .. m .. "\' not found") end',
      'end',
      'local iot = require("tencentcloud.iotexplorer")',
      'local c = assert(iot.new{ region = "ap-guangzhou", secret_id = "a", secret_key = "b",',
      '  metadata_endpoint = false })',
      'c:close()',
      'io.write("loaded")',
    }, "\n"))
    local _, out = util.run(util.INTERPRETER .. " " .. util.shell_quote(script))
    os.remove(script)
    assert.equal("loaded", out:match("loaded") or out)
  end)
end)

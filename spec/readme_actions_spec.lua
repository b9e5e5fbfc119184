-- The README's parameter tables are the action tables' own: rendered from actions.lua, never written by hand.
local actions = require("tencentcloud.iotexplorer.actions")
local docs = require("helpers.action_docs")

describe("README parameter tables", function()
  it("equal the rendering of actions.lua (rewrite with: lua5.4 spec/helpers/action_docs.lua README.md)", function()
    local f = assert(io.open("README.md", "rb"))
    local text = f:read("*a")
    f:close()
    local block = docs.extract(text)
    assert.is_string(block, "README.md has no generated parameter block")
    assert.equal(docs.render(actions), block)
  end)

  it("name every action and every parameter", function()
    local rendered = docs.render(actions)
    for _, a in ipairs(actions.list) do
      assert.truthy(rendered:find(a.name, 1, true))
      for _, p in ipairs(a.params) do
        assert.truthy(rendered:find("`" .. p.name .. "`", 1, true), p.name)
      end
    end
  end)
end)

-- The README's parameter tables, rendered from actions.lua. spec/readme_actions_spec.lua holds the README
-- equal to this; after changing an action, rewrite the block with
--   lua5.4 spec/helpers/action_docs.lua README.md
local M = {}

M.BEGIN = "<!-- parameter tables: generated from lua/tencentcloud/iotexplorer/actions.lua -->"
M.END = "<!-- end of parameter tables -->"

local function requirement(p)
  if p.required then
    return "yes"
  elseif p.required_when then
    local k, v = next(p.required_when)
    return "when " .. k .. " is " .. tostring(v)
  elseif p.required_unless then
    return "unless " .. p.required_unless .. " is given"
  end
  return "no"
end

local function values(p)
  if p.enum then
    local shown = {}
    for i, e in ipairs(p.enum) do shown[i] = tostring(e) end
    return table.concat(shown, ", ")
  elseif p.min and p.max then
    return p.min .. " to " .. p.max
  elseif p.min then
    return ">= " .. p.min
  end
  return ""
end

function M.render(actions)
  local out = { M.BEGIN }
  for _, a in ipairs(actions.list) do
    out[#out + 1] = ""
    out[#out + 1] = string.format("#### %s: `client:%s(params, opts)`, `tciot %s`", a.name, a.method, a.name)
    out[#out + 1] = ""
    out[#out + 1] = a.summary .. (a.write and " A write: never sent twice." or " A read: retried.")
    out[#out + 1] = ""
    out[#out + 1] = "| parameter | type | required | values | meaning |"
    out[#out + 1] = "|---|---|---|---|---|"
    for _, p in ipairs(a.params) do
      out[#out + 1] = string.format("| `%s` | %s | %s | %s | %s |", p.name, p.type, requirement(p), values(p), p.doc)
    end
    if a.secrets and #a.secrets > 0 then
      out[#out + 1] = ""
      out[#out + 1] = "Secrets in the response (never logged): " .. "`" .. table.concat(a.secrets, "`, `") .. "`."
    end
  end
  out[#out + 1] = ""
  out[#out + 1] = M.END
  return table.concat(out, "\n")
end

-- The block as it stands in `text`, or nil.
function M.extract(text)
  local i = text:find(M.BEGIN, 1, true)
  local _, j = text:find(M.END, 1, true)
  if i and j then
    return text:sub(i, j)
  end
end

if arg and arg[0] and arg[0]:find("action_docs%.lua$") and arg[1] then
  package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
  local f = assert(io.open(arg[1], "rb"))
  local text = f:read("*a")
  f:close()
  local old = assert(M.extract(text), "no generated block in " .. arg[1])
  local new = M.render(require("tencentcloud.iotexplorer.actions"))
  local i = text:find(old, 1, true)
  text = text:sub(1, i - 1) .. new .. text:sub(i + #old)
  f = assert(io.open(arg[1], "wb"))
  f:write(text)
  f:close()
end

return M

-- tciot's help: the usage line and option list of each command, the command overview, and the parameter
-- skeleton for --cli-input-json, all from the command tables (cli/commands.lua, from actions.lua).

local actions = require("tencentcloud.iotexplorer.actions")
local commands = require("tencentcloud.iotexplorer.cli.commands")

local help = {}

function help.usage_line(name)
  local cmd = commands.by_name[name]
  if not cmd then
    return "usage: tciot [global options] <command> [options]"
  end
  local parts = { "usage: tciot", name }
  if cmd.args then
    parts[#parts + 1] = cmd.args
  end
  for _, o in ipairs(cmd.options) do
    if o.required then
      parts[#parts + 1] = "--" .. o[1] .. " " .. o[3]
    end
  end
  parts[#parts + 1] = "[options]"
  return table.concat(parts, " ")
end

local function option_lines(list, out)
  for _, o in ipairs(list) do
    local left = "  --" .. o[1] .. (o[3] and (" " .. o[3]) or "")
    out[#out + 1] = string.format("%-34s %s", left, o[4])
  end
end

function help.help(name)
  local out = {}
  local cmd = commands.by_name[name]
  if cmd then
    out[#out + 1] = help.usage_line(name)
    out[#out + 1] = ""
    out[#out + 1] = cmd.summary
    if #cmd.options > 0 then
      out[#out + 1] = ""
      out[#out + 1] = "Options:"
      option_lines(cmd.options, out)
    end
  else
    out[#out + 1] = help.usage_line(nil)
    out[#out + 1] = ""
    out[#out + 1] = "Tencent Cloud IoT Explorer from the shell (API 3.0, " .. actions.SERVICE .. " "
      .. actions.VERSION .. ")."
    out[#out + 1] = ""
    out[#out + 1] = "Commands:"
    for _, n in ipairs(commands.order) do
      out[#out + 1] = string.format("  %-26s %s", n, commands.by_name[n].brief)
    end
  end
  if not (cmd and cmd.no_globals) then
    out[#out + 1] = ""
    out[#out + 1] = "Global options:"
    option_lines(commands.GLOBAL_OPTIONS, out)
  end
  if not cmd then
    out[#out + 1] = ""
    out[#out + 1] = "Credentials: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (+ TENCENTCLOUD_SESSION_TOKEN),"
    out[#out + 1] = "else ~/.tencentcloud/credentials (--profile), else the CVM instance role."
    out[#out + 1] = "Exit codes: 0 ok, 1 the service answered with an error, 2 usage or credentials,"
    out[#out + 1] = "3 network failure or deadline, 4 the batch failed or the download could not be completed,"
    out[#out + 1] = "130 interrupted (SIGINT), 143 terminated (SIGTERM)."
    out[#out + 1] = "Run 'tciot <command> --help' for a command's options."
  end
  return table.concat(out, "\n") .. "\n"
end

-- A JSON object with every parameter of the action, for --cli-input-json: each value a placeholder of the
-- parameter's type.
local SKELETON_VALUE = { String = "", Integer = 0, Boolean = false }

function help.skeleton(action)
  local t = {}
  for _, p in ipairs(action.params) do
    local v = SKELETON_VALUE[p.type]
    if v == nil then
      v = {}
    end
    if p.type == "Integer" and p.enum then
      v = p.enum[1]
    end
    t[p.name] = v
  end
  return t
end

return help

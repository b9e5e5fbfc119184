-- tciot's commands and options; cli/help.lua renders their help. Every action in actions.lua is a command
-- whose parameters are its --Name options (typed, required ones marked, help from the action table); what
-- only tciot does (waiting, downloading, paging, several batches) is added here. commands.parse turns argv
-- into { command, globals, options, positional, repeated } or nil, message, command.

local actions = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local format = require("tencentcloud.iotexplorer.cli.format")

local commands = {}

-- An option: { name, kind, placeholder, help, required = true, param = <action parameter> }.
-- Kinds: string, int, bool, seconds, json (any JSON value), object (a JSON object), input (JSON or a
-- file), flag, output, port, count.
local function option(name, kind, placeholder, help, extra)
  local o = { name, kind, placeholder, help }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end

commands.GLOBAL_OPTIONS = {
  option("region", "string", "REGION", "the region, e.g. ap-guangzhou (default: $TENCENTCLOUD_REGION, "
    .. "else tccli's configure file)"),
  option("endpoint", "string", "URL", "the API endpoint (default " .. actions.DEFAULT_ENDPOINT
    .. "); a bare HOST[:PORT] means https"),
  option("profile", "string", "NAME", "the credentials and configure profile (default: $TENCENTCLOUD_PROFILE "
    .. "or default); given here, it wins over $TENCENTCLOUD_SECRET_*"),
  option("timeout", "seconds", "SECONDS", "per-attempt timeout of each API request (default 10)"),
  option("output", "output", "json|table|text", "output format (default json)"),
  option("language", "string", table.concat(actions.LANGUAGES, "|"), "language of the service's error messages"),
  option("ca-file", "string", "FILE", "trust the CA certificates in FILE (PEM)"),
  option("ca-path", "string", "DIR", "trust the CA certificates in DIR (hashed, as c_rehash makes)"),
  option("role-arn", "string", "ARN", "assume this CAM role (STS AssumeRole) with the credentials found"),
  option("role-session-name", "string", "NAME", "with --role-arn: the role session's name"),
  option("use-cvm-role", "flag", nil, "use the CVM instance role's credentials"),
  option("verbose", "flag", nil, "one line per request attempt on stderr, naming the credential source "
    .. "(never a secret)"),
  option("version", "flag", nil, "print tciot's and the library's versions"),
  option("help", "flag", nil, "show help"),
}

local KIND_OF_TYPE = { String = "string", Integer = "int", Boolean = "bool", Array = "json", Object = "json" }

local function required_note(p)
  if p.required then
    return " (required)"
  end
  if p.required_when then
    local parts = {}
    for other, value in pairs(p.required_when) do
      parts[#parts + 1] = other .. " is " .. tostring(value)
    end
    table.sort(parts)
    return " (required when " .. table.concat(parts, " and ") .. ")"
  end
  if p.required_unless then
    return " (required unless --" .. p.required_unless .. " is given)"
  end
  return ""
end

-- Parameters that may be given more than once: each value is one item of a call over a list.
local REPEATABLE = { DescribeBatchProduction = { BatchProductionId = true } }

local function param_options(action)
  local list = {}
  local repeatable = REPEATABLE[action.name] or {}
  for _, p in ipairs(action.params) do
    local placeholder = p.placeholder
    if not placeholder and p.enum then
      local shown = {}
      for i, e in ipairs(p.enum) do shown[i] = tostring(e) end
      placeholder = table.concat(shown, "|")
    end
    list[#list + 1] = option(p.name, KIND_OF_TYPE[p.type] or "json", placeholder or p.type:upper(),
      (p.doc or p.name) .. required_note(p) .. (repeatable[p.name] and "; may be given more than once" or ""),
      { required = p.required or nil, param = p, repeatable = repeatable[p.name] })
  end
  return list
end

local INPUT_OPTIONS = {
  option("cli-input-json", "input", "JSON|file://PATH", "the parameters as one JSON object; --Name options "
    .. "given too override it"),
  option("generate-cli-skeleton", "flag", nil, "print a JSON object of every parameter, to fill in for "
    .. "--cli-input-json"),
}

-- What only tciot adds to an action.
local EXTRA_OPTIONS = {
  DescribeBatchProduction = {
    option("wait", "flag", nil, "poll until the batch is done or has failed (progress on stderr)"),
    option("deadline", "seconds", "SECONDS", "with --wait: give up after this long (default 600)"),
    option("poll-interval", "seconds", "SECONDS", "with --wait: first pause between polls (default 1)"),
    option("max-poll-interval", "seconds", "SECONDS", "with --wait: pauses grow 1.5x per poll up to this "
      .. "(default 10)"),
    option("download", "string", "FILE|-", "save the device CSV to FILE; - writes it to stdout instead of "
      .. "the JSON"),
    option("BatchProductionIds-file", "string", "FILE|-", "the batches, one id a line (- reads stdin); with "
      .. "--BatchProductionId given more than once too, prints one JSON array in input order"),
    option("concurrency", "count", "N", "with several batches: requests in flight at once (default 8)"),
  },
  GetBatchProductionsList = {
    option("all", "flag", nil, "every page, merged into one result with TotalCnt"),
  },
}

local BRIEF = {
  DescribeBatchProduction = "one batch: status, device counts, device file (--wait, --download)",
}

local USAGE_EXTRA = {
  DescribeBatchProduction = "\nWith --wait, polls until the batch is done (Status 3) or has failed; with "
    .. "--download,\nsaves the device CSV, renamed into place only once complete.",
}

commands.by_name, commands.order = {}, {}

local function add(name, cmd)
  cmd.name = name
  commands.by_name[name] = cmd
  commands.order[#commands.order + 1] = name
end

for _, a in ipairs(actions.list) do
  local opts = param_options(a)
  for _, o in ipairs(EXTRA_OPTIONS[a.name] or {}) do opts[#opts + 1] = o end
  for _, o in ipairs(INPUT_OPTIONS) do opts[#opts + 1] = o end
  add(a.name, {
    action = a, brief = BRIEF[a.name] or a.summary,
    summary = a.summary .. (USAGE_EXTRA[a.name] or ""), options = opts,
  })
end

add("call", {
  brief = "any other iotexplorer action, parameters as JSON",
  args = "<Action>",
  summary = "Calls any action of the " .. actions.SERVICE .. " service (version " .. actions.VERSION
    .. ") with parameters\ngiven as one JSON object. Describe*/Get*/List* actions are retried as reads.",
  options = {
    option("param-json", "input", "JSON|file://PATH|@PATH", "the action's parameters as a JSON object "
      .. "(default {})"),
  },
})
add("emulator", {
  brief = "run the local API emulator (development and tests)",
  summary = "Runs the local API emulator in the foreground until interrupted. With --port 0 (the\n"
    .. "default) it picks a free port; it prints the shell lines that point the library and tciot\n"
    .. "at it (export ...), then EMULATOR_READY http://127.0.0.1:PORT once it is listening.\n"
    .. "For development and tests only.",
  no_globals = true,
  options = {
    option("port", "port", "N", "the port to listen on (default 0: a free one)"),
    option("fixture", "string", "FILE", "a JSON fixture: credentials, products, batches, timings"),
    option("exit-on-stdin-eof", "flag", nil, "also stop when stdin is closed"),
  },
})
add("configure", {
  brief = "show the configuration tciot would use (configure list)",
  args = "list",
  summary = "Shows where the region, output, endpoint and credentials would come from (never a secret).",
  options = {},
})
add("help", {
  brief = "help for tciot or one command",
  args = "[COMMAND]",
  summary = "Shows help for tciot or for one command.",
  no_globals = true,
  options = {},
})

-- ----------------------------------------------------------------------------
-- Argument parsing. Global options may come before or after the command; a command's own options come
-- after it. --name value and --name=value both work.

local function find_option(list, name)
  for _, o in ipairs(list) do
    if o[1] == name then
      return o
    end
  end
end

local function names(list, out)
  out = out or {}
  for _, o in ipairs(list) do
    out[#out + 1] = o[1]
  end
  return out
end

local function to_int(n)
  return math.tointeger and math.tointeger(n) or n
end

-- Reads JSON given inline, as file://PATH or (when `at` is allowed) as @PATH.
local function read_input(raw, flag, allow_at)
  local path = raw:match("^file://(.*)$") or (allow_at and raw:match("^@(.+)$"))
  if path then
    local f, ferr = io.open(path, "rb")
    if not f then
      return nil, flag .. ": cannot read " .. path .. ": " .. tostring(ferr)
    end
    raw = f:read("*a") or ""
    f:close()
  end
  return raw
end

local function decode(raw, flag, want_object)
  local cjson = require("cjson.safe")
  local v, jerr = cjson.decode(raw)
  if v == nil or (want_object and (type(v) ~= "table" or not raw:find("^%s*{"))) then
    if want_object then
      return nil, flag .. " expects a JSON object such as '{\"ProductId\": \"R32ONVL0EU\"}'"
        .. (jerr and (": " .. jerr) or "")
    end
    return nil, flag .. " expects a JSON value" .. (jerr and (": " .. jerr) or "")
  end
  return v
end

-- Converts one value; returns the value or nil, message.
local function convert(o, raw)
  local kind, flag = o[2], "--" .. o[1]
  if kind == "string" then
    return raw
  elseif kind == "int" then
    if not raw:find("^%-?%d+$") or #raw > 15 then
      return nil, flag .. " expects an integer, got '" .. raw .. "'"
    end
    return to_int(tonumber(raw))
  elseif kind == "port" then
    local n = raw:find("^%d+$") and tonumber(raw)
    if not n or n > 65535 then
      return nil, flag .. " expects a port number from 0 to 65535, got '" .. raw .. "'"
    end
    return to_int(n)
  elseif kind == "count" then
    local n = raw:find("^%d+$") and tonumber(raw)
    if not n or n < 1 or n > 1000 then
      return nil, flag .. " expects a number from 1 to 1000, got '" .. raw .. "'"
    end
    return to_int(n)
  elseif kind == "seconds" then
    local n = tonumber(raw)
    if not n or n ~= n or n <= 0 or n > check.MAX_SECONDS then
      return nil, flag .. " expects a positive number of seconds, got '" .. raw .. "'"
    end
    return n
  elseif kind == "bool" then
    local v = raw:lower()
    if v == "true" then
      return true
    elseif v == "false" then
      return false
    end
    return nil, flag .. " expects true or false, got '" .. raw .. "'"
  elseif kind == "output" then
    for _, name in ipairs(format.OUTPUTS) do
      if raw == name then
        return raw
      end
    end
    return nil, flag .. " expects " .. table.concat(format.OUTPUTS, ", ") .. ", got '" .. raw .. "'"
  elseif kind == "json" then
    return decode(raw, flag, false)
  elseif kind == "input" then
    local text, rerr = read_input(raw, flag, o[1] == "param-json")
    if not text then
      return nil, rerr
    end
    return decode(text, flag, true)
  end
  error("unknown option kind " .. tostring(kind))
end

local function wants_help(a)
  return a == "--help" or a == "-h"
end
commands.wants_help = wants_help

local function unknown_command(name)
  local msg = "unknown command '" .. name .. "'"
  local hint = check.suggest(name, commands.order)
  if hint then
    return msg .. " (did you mean " .. hint .. "?)"
  end
  if name:find("^%u%w+$") then
    return msg .. " (for an action tciot has no command for: tciot call " .. name .. " --param-json '{...}')"
  end
  return msg
end
commands.unknown_command = unknown_command

local function unknown_option(name, cmd)
  local candidates = names(commands.GLOBAL_OPTIONS, cmd and names(cmd.options) or {})
  local msg = "unknown option --" .. name
  local hint = check.suggest(name, candidates)
  if hint then
    msg = msg .. " (did you mean --" .. hint .. "?)"
  elseif not cmd then
    msg = msg .. " (a command's options go after the command)"
  end
  return msg
end

function commands.parse(argv)
  local args = { globals = {}, options = {}, positional = {}, repeated = {} }
  -- The command is the first word that is not a global option or its value.
  local at = 1
  while at <= #argv do
    local a = argv[at]
    if a:sub(1, 2) == "--" then
      local name = a:match("^%-%-([^=]*)")
      local o = find_option(commands.GLOBAL_OPTIONS, name)
      if not o then
        return nil, unknown_option(name, nil)
      end
      at = at + ((o[2] == "flag" or a:find("=")) and 1 or 2)
    elseif wants_help(a) then
      at = at + 1
    else
      args.command = a
      break
    end
  end
  local cmd = commands.by_name[args.command]
  if args.command and not cmd then
    return nil, unknown_command(args.command)
  end

  local rest = {}
  for j, a in ipairs(argv) do
    if j ~= at then
      rest[#rest + 1] = a
    end
  end
  local seen = {}
  local i = 1
  while i <= #rest do
    local a = rest[i]
    if wants_help(a) then
      args.globals.help = true
    elseif a:sub(1, 2) == "--" and #a > 2 then
      local name, inline = a:match("^%-%-([^=]*)=(.*)$")
      name = name or a:sub(3)
      local o = cmd and find_option(cmd.options, name)
      local target = args.options
      if not o then
        o, target = find_option(commands.GLOBAL_OPTIONS, name), args.globals
      end
      if not o then
        return nil, unknown_option(name, cmd), args.command
      end
      if seen[name] and not o.repeatable then
        return nil, "--" .. name .. " is given twice", args.command
      end
      seen[name] = true
      if o[2] == "flag" then
        if inline then
          return nil, "--" .. name .. " takes no value", args.command
        end
        target[name] = true
      else
        local raw = inline
        if raw == nil then
          raw = rest[i + 1]
          if raw == nil or (raw:sub(1, 2) == "--" and #raw > 2) then
            return nil, "--" .. name .. " needs a value (" .. o[3] .. ")", args.command
          end
          i = i + 1
        end
        local v, verr = convert(o, raw)
        if v == nil then
          return nil, verr, args.command
        end
        -- A repeatable option keeps its first value as the option and every value in args.repeated.
        if target[name] == nil then
          target[name] = v
        end
        if o.repeatable then
          args.repeated[name] = args.repeated[name] or {}
          table.insert(args.repeated[name], v)
        end
      end
    else
      args.positional[#args.positional + 1] = a
    end
    i = i + 1
  end
  return args
end

-- The action's parameters: --cli-input-json first, then each --Name option over it. Returns the table.
function commands.params(cmd, opts)
  local params = {}
  for k, v in pairs(opts["cli-input-json"] or {}) do
    params[k] = v
  end
  for _, o in ipairs(cmd.options) do
    if o.param and opts[o[1]] ~= nil then
      params[o[1]] = opts[o[1]]
    end
  end
  return params
end

return commands

-- tciot: the command line over the library. bin/tciot only calls cli.main(arg).
--
--   tciot DescribeBatchProduction --ProductId R32ONVL0EU --BatchProductionId LC-ya6zinv9
--   tciot CreateBatchProduction --ProjectId P --ProductId R32ONVL0EU --BurnMethod 0 --GenerationMethod 0
--   tciot GetBatchProductionsList --ProjectId P
--   tciot call DescribeProduct --param-json '{"ProductId": "R32ONVL0EU"}'
--   tciot emulator --port 0
--
-- Exit codes: 0 success; 1 the service answered with an error; 2 usage error, invalid
-- parameter or missing credentials; 3 network failure or a deadline; 4 the batch
-- failed or the download could not be completed.

local cjson = require("cjson.safe")
local errors = require("tencentcloud.iotexplorer.errors")

local cli = {}

local EXIT_OK, EXIT_SERVICE, EXIT_USAGE, EXIT_NETWORK, EXIT_BATCH = 0, 1, 2, 3, 4
cli.EXIT = { ok = EXIT_OK, service = EXIT_SERVICE, usage = EXIT_USAGE, network = EXIT_NETWORK, batch = EXIT_BATCH }

-- ----------------------------------------------------------------------------
-- Commands and their options. Each option: name, kind, placeholder, help text.
-- Kinds: string, int, bool, seconds, json, flag, output, port.

local GLOBAL_OPTIONS = {
  { "region", "string", "REGION", "the region, e.g. ap-guangzhou (default: $TENCENTCLOUD_REGION)" },
  { "endpoint", "string", "URL", "the API endpoint (default https://iotexplorer.tencentcloudapi.com)" },
  { "profile", "string", "NAME", "the section of the credentials file (default: $TENCENTCLOUD_PROFILE or default)" },
  { "timeout", "seconds", "SECONDS", "per-attempt timeout of each API request (default 10)" },
  { "output", "output", "json|table", "output format (default json)" },
  { "language", "string", "zh-CN|en-US", "language of the service's error messages" },
  { "verbose", "flag", nil, "one line per request attempt on stderr (never a secret)" },
  { "help", "flag", nil, "show help" },
}

local COMMANDS = {
  DescribeBatchProduction = {
    brief = "one batch: status, device counts, device file (--wait, --download)",
    summary = "Shows one batch production: status, device counts and the link to its device file.\n"
      .. "With --wait, polls until the batch is done (Status 3) or has failed; with --download,\n"
      .. "saves the device CSV, renamed into place only once complete.",
    options = {
      { "ProductId", "string", "ID", "the product, e.g. R32ONVL0EU", required = true },
      { "BatchProductionId", "string", "ID", "the batch, e.g. LC-ya6zinv9", required = true },
      { "wait", "flag", nil, "poll until the batch is done or has failed (progress on stderr)" },
      { "deadline", "seconds", "SECONDS", "with --wait: give up after this long (default 600)" },
      { "poll-interval", "seconds", "SECONDS", "with --wait: first pause between polls (default 1)" },
      { "max-poll-interval", "seconds", "SECONDS", "with --wait: pauses grow 1.5x per poll up to this (default 10)" },
      { "download", "string", "FILE|-", "save the device CSV to FILE; - writes it to stdout instead of the JSON" },
    },
  },
  CreateBatchProduction = {
    brief = "start a batch production",
    summary = "Starts a batch production and prints its BatchProductionId.",
    options = {
      { "ProjectId", "string", "ID", "the project", required = true },
      { "ProductId", "string", "ID", "the product", required = true },
      { "BurnMethod", "int", "0|1", "0 direct burn, 1 dynamic registration", required = true },
      { "GenerationMethod", "int", "0|1", "0 system-generated, 1 file upload", required = true },
      { "BatchCnt", "int", "N", "how many devices" },
      { "UploadUrl", "string", "URL", "the device-name file, when GenerationMethod is 1" },
      { "GenerationQRCode", "int", "0|1", "1 also generates QR codes" },
    },
  },
  GetBatchProductionsList = {
    brief = "list a project's batch productions",
    summary = "Lists a project's batch productions, newest first, one page at a time.",
    options = {
      { "ProjectId", "string", "ID", "the project", required = true },
      { "Offset", "int", "N", "how many to skip (default 0)" },
      { "Limit", "int", "N", "page size (default 20)" },
    },
  },
  call = {
    brief = "any other iotexplorer action, parameters as JSON",
    args = "<Action>",
    summary = "Calls any action of the iotexplorer service (version 2019-04-23) with parameters\n"
      .. "given as one JSON object. Describe*/Get*/List* actions are retried as reads.",
    options = {
      { "param-json", "json", "JSON", "the action's parameters as a JSON object (default {})" },
    },
  },
  emulator = {
    brief = "run the local API emulator (development and tests)",
    summary = "Runs the local API emulator in the foreground until interrupted. With --port 0 (the\n"
      .. "default) it picks a free port; it prints one line, EMULATOR_READY http://127.0.0.1:PORT,\n"
      .. "once it is listening. For development and tests only.",
    options = {
      { "port", "port", "N", "the port to listen on (default 0: a free one)" },
      { "fixture", "string", "FILE", "a JSON fixture: credentials, products, batches, timings" },
      { "exit-on-stdin-eof", "flag", nil, "also stop when stdin is closed" },
    },
  },
  help = {
    brief = "help for tciot or one command",
    args = "[COMMAND]",
    summary = "Shows help for tciot or for one command.",
    options = {},
  },
}

local COMMAND_ORDER = {
  "DescribeBatchProduction", "CreateBatchProduction", "GetBatchProductionsList", "call", "emulator", "help",
}

local function usage_line(name)
  local cmd = COMMANDS[name]
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
    local help = o[4] .. (o.required and " (required)" or "")
    out[#out + 1] = string.format("%-30s %s", left, help)
  end
end

function cli.help(name)
  local out = {}
  local cmd = COMMANDS[name]
  if cmd then
    out[#out + 1] = usage_line(name)
    out[#out + 1] = ""
    out[#out + 1] = cmd.summary
    if #cmd.options > 0 then
      out[#out + 1] = ""
      out[#out + 1] = "Options:"
      option_lines(cmd.options, out)
    end
  else
    out[#out + 1] = usage_line(nil)
    out[#out + 1] = ""
    out[#out + 1] = "Tencent Cloud IoT Explorer batch production from the shell (API 3.0, iotexplorer 2019-04-23)."
    out[#out + 1] = ""
    out[#out + 1] = "Commands:"
    for _, n in ipairs(COMMAND_ORDER) do
      out[#out + 1] = string.format("  %-26s %s", n, COMMANDS[n].brief)
    end
  end
  if name ~= "emulator" and name ~= "help" then
    out[#out + 1] = ""
    out[#out + 1] = "Global options:"
    option_lines(GLOBAL_OPTIONS, out)
  end
  if not cmd then
    out[#out + 1] = ""
    out[#out + 1] = "Credentials: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (+ TENCENTCLOUD_SESSION_TOKEN),"
    out[#out + 1] = "else ~/.tencentcloud/credentials (--profile), else the CVM instance role."
    out[#out + 1] = "Exit codes: 0 ok, 1 the service answered with an error, 2 usage or credentials,"
    out[#out + 1] = "3 network failure or deadline, 4 the batch failed or the download could not be completed."
    out[#out + 1] = "Run 'tciot <command> --help' for a command's options."
  end
  return table.concat(out, "\n") .. "\n"
end

-- ----------------------------------------------------------------------------
-- Argument parsing. Global options may come before or after the command; a
-- command's own options come after it. --name value and --name=value both work.

local function find_option(list, name)
  for _, o in ipairs(list) do
    if o[1] == name then
      return o
    end
  end
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
    local n = tonumber(raw)
    return math.tointeger and math.tointeger(n) or n
  elseif kind == "port" then
    local n = raw:find("^%d+$") and tonumber(raw)
    if not n or n > 65535 then
      return nil, flag .. " expects a port number from 0 to 65535, got '" .. raw .. "'"
    end
    return math.tointeger and math.tointeger(n) or n
  elseif kind == "seconds" then
    local n = tonumber(raw)
    if not n or n ~= n or n <= 0 or n == math.huge then
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
    if raw == "json" or raw == "table" then
      return raw
    end
    return nil, flag .. " expects json or table, got '" .. raw .. "'"
  elseif kind == "json" then
    local v, jerr = cjson.decode(raw)
    if type(v) ~= "table" or not raw:find("^%s*{") then
      return nil, flag .. " expects a JSON object such as '{\"ProductId\": \"R32ONVL0EU\"}'"
        .. (jerr and (": " .. jerr) or "")
    end
    return v
  end
  error("unknown option kind " .. tostring(kind))
end

local function wants_help(a)
  return a == "--help" or a == "-h"
end

-- Returns { command, globals = {}, options = {}, positional = {} } or nil, message, command.
function cli.parse(argv)
  local args = { globals = {}, options = {}, positional = {} }
  -- The command is the first word that is not a global option or its value.
  local at = 1
  while at <= #argv do
    local a = argv[at]
    if a:sub(1, 2) == "--" then
      local o = find_option(GLOBAL_OPTIONS, (a:match("^%-%-([^=]*)")))
      if not o then
        return nil, "unknown option " .. a:match("^[^=]*") .. " (a command's options go after the command)"
      end
      at = at + ((o[2] == "flag" or a:find("=")) and 1 or 2)
    elseif wants_help(a) then
      at = at + 1
    else
      args.command = a
      break
    end
  end
  local cmd = COMMANDS[args.command]
  if args.command and not cmd then
    return nil, "unknown command '" .. args.command .. "'"
  end

  -- Everything but the command word.
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
        o, target = find_option(GLOBAL_OPTIONS, name), args.globals
      end
      if not o then
        return nil, "unknown option --" .. name, args.command
      end
      if seen[name] then
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
        target[name] = v
      end
    else
      args.positional[#args.positional + 1] = a
    end
    i = i + 1
  end
  return args
end

-- Checks what parse() cannot: required options, positional arguments, combinations.
local function check_command(args)
  local name, cmd = args.command, COMMANDS[args.command]
  local want = name == "call" and 1 or (name == "help" and #args.positional or 0)
  if #args.positional > want then
    return "unexpected argument '" .. args.positional[want + 1] .. "'"
  end
  if name == "call" and #args.positional == 0 then
    return "call needs an action name, e.g. tciot call DescribeProduct --param-json '{...}'"
  end
  for _, o in ipairs(cmd.options) do
    if o.required and args.options[o[1]] == nil then
      return "--" .. o[1] .. " is required"
    end
  end
  local opts = args.options
  if not opts.wait then
    for _, flag in ipairs({ "deadline", "poll-interval", "max-poll-interval" }) do
      if opts[flag] then
        return "--" .. flag .. " only applies with --wait"
      end
    end
  end
  if opts.download == "" then
    return "--download needs a file name, or - for stdout"
  end
end

-- ----------------------------------------------------------------------------
-- Output: JSON with sorted keys (deterministic), or tables.

local function is_array(t)
  local n = #t
  if n == 0 then
    -- The decoder cannot tell {} from []: in API responses an empty value is a list.
    return next(t) == nil
  end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
  end
  return count == n
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    return "null"
  end
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
    return string.format("%d", n)
  end
  for digits = 14, 17 do
    local s = string.format("%." .. digits .. "g", n)
    if tonumber(s) == n then
      return s
    end
  end
end

local function encode(v, indent, out)
  local t = type(v)
  if t == "table" then
    local pad = string.rep("    ", indent + 1)
    if next(v) == nil then
      out[#out + 1] = "[]"
    elseif is_array(v) then
      out[#out + 1] = "[\n"
      for i, item in ipairs(v) do
        out[#out + 1] = pad
        encode(item, indent + 1, out)
        out[#out + 1] = i < #v and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("    ", indent) .. "]"
    else
      out[#out + 1] = "{\n"
      local keys = sorted_keys(v)
      for i, k in ipairs(keys) do
        out[#out + 1] = pad .. json_string(tostring(k)) .. ": "
        encode(v[k], indent + 1, out)
        out[#out + 1] = i < #keys and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("    ", indent) .. "}"
    end
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t == "number" then
    out[#out + 1] = json_number(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null"   -- cjson.null and anything without a JSON form
  end
end

-- Pretty JSON, keys sorted, four-space indent, non-ASCII kept as UTF-8.
function cli.to_json(v)
  local out = {}
  encode(v, 0, out)
  return table.concat(out) .. "\n"
end

local function cell(v)
  local t = type(v)
  if t == "string" then
    return (v:gsub("%c", " "))
  elseif t == "number" then
    return json_number(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return (cli.to_json(v):gsub("%s*\n%s*", " "):gsub(" $", ""))
  end
  return "null"
end

-- Display width: UTF-8 continuation bytes take no column.
local function width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

local function pad(s, w)
  return s .. string.rep(" ", w - width(s))
end

local function render_table(header, rows, out)
  local widths = {}
  for c, h in ipairs(header or rows[1]) do
    widths[c] = header and width(h) or 0
  end
  for _, row in ipairs(rows) do
    for c, v in ipairs(row) do
      widths[c] = math.max(widths[c] or 0, width(v))
    end
  end
  local rule = {}
  for c, w in ipairs(widths) do
    rule[c] = string.rep("-", w + 2)
  end
  rule = "+" .. table.concat(rule, "+") .. "+"
  local function line(row)
    local cells = {}
    for c, w in ipairs(widths) do
      cells[c] = " " .. pad(row[c] or "", w) .. " "
    end
    out[#out + 1] = "|" .. table.concat(cells, "|") .. "|"
  end
  out[#out + 1] = rule
  if header then
    line(header)
    out[#out + 1] = rule
  end
  for _, row in ipairs(rows) do
    line(row)
  end
  out[#out + 1] = rule
end

local function is_list_of_objects(v)
  if type(v) ~= "table" or next(v) == nil or not is_array(v) then
    return false
  end
  for _, item in ipairs(v) do
    if type(item) ~= "table" or is_array(item) then
      return false
    end
  end
  return true
end

-- Scalars as a two-column table; each list of objects as its own table below, one row per item.
function cli.to_table(res)
  local out, pairs_rows, lists = {}, {}, {}
  local function flatten(prefix, t)
    for _, k in ipairs(sorted_keys(t)) do
      local v, name = t[k], prefix .. tostring(k)
      if is_list_of_objects(v) then
        lists[#lists + 1] = { name = name, items = v }
      elseif type(v) == "table" and next(v) ~= nil and not is_array(v) then
        flatten(name .. ".", v)
      else
        pairs_rows[#pairs_rows + 1] = { name, cell(v) }
      end
    end
  end
  flatten("", res)
  if #pairs_rows > 0 then
    render_table(nil, pairs_rows, out)
  end
  for _, list in ipairs(lists) do
    local columns, have = {}, {}
    for _, item in ipairs(list.items) do
      for k in pairs(item) do
        if not have[k] then
          have[k] = true
          columns[#columns + 1] = tostring(k)
        end
      end
    end
    table.sort(columns)
    local rows = {}
    for r, item in ipairs(list.items) do
      rows[r] = {}
      for c, k in ipairs(columns) do
        rows[r][c] = item[k] == nil and "" or cell(item[k])
      end
    end
    out[#out + 1] = string.format("%s (%d)", list.name, #list.items)
    render_table(columns, rows, out)
  end
  return table.concat(out, "\n") .. "\n"
end

-- ----------------------------------------------------------------------------
-- Errors and exit codes.

local DOWNLOAD_OR_BATCH = {
  [errors.BATCH_FAILED] = true, [errors.BATCH_NOT_READY] = true,
}

function cli.exit_code(err)
  local code = type(err) == "table" and err.code or ""
  if DOWNLOAD_OR_BATCH[code] or (type(err) == "table" and err.stage == "download") then
    return EXIT_BATCH
  end
  if code == "ClientError.NetworkError" or code == "ClientError.Timeout" then
    return EXIT_NETWORK
  end
  if code == "ClientError.InvalidParameter" or code == "ClientError.CredentialError" then
    return EXIT_USAGE
  end
  return EXIT_SERVICE
end

-- ----------------------------------------------------------------------------
-- Progress on stderr: redrawn in place on a terminal, plain lines otherwise.

local function stderr_is_tty()
  local r = os.execute("test -t 2")
  return r == true or r == 0
end

local function format_bytes(n)
  if n >= 1024 * 1024 then
    return string.format("%.1f MiB", n / 1048576)
  elseif n >= 1024 then
    return string.format("%.1f KiB", n / 1024)
  end
  return string.format("%d B", n)
end

-- Returns the on_progress function for wait_batch_production, and a function that ends
-- the line still being redrawn on a terminal.
local function wait_reporter(io_err, tty, batch_id, status_names)
  local last, open = nil, false
  local function finish()
    if open then
      io_err:write("\n")
      open = false
    end
  end
  local function report(res, elapsed)
    local line = string.format("%s: Status %s (%s), %s/%s devices, %.1fs", batch_id, tostring(res.Status),
      status_names[res.Status] or "unknown", tostring(res.SuccessCount or "?"), tostring(res.BatchCnt or "?"),
      elapsed)
    local key = tostring(res.Status) .. "/" .. tostring(res.SuccessCount) .. "/" .. tostring(res.LastFailedReason)
    if tty then
      io_err:write("\r\27[K", line)
      open = true
    elseif key ~= last then
      io_err:write("tciot: ", line, "\n")
    end
    io_err:flush()
    last = key
  end
  return report, finish
end

local function download_bar(io_err, now)
  local drawn_at, drawn, shown = 0, false, -1
  local bar = {}
  function bar.progress(received, total)
    local t = now()
    if received == shown or (t - drawn_at < 0.1 and not (total > 0 and received == total)) then
      return
    end
    drawn_at, drawn, shown = t, true, received
    if total > 0 then
      local filled = math.floor(30 * received / total)
      io_err:write(string.format("\r\27[K[%s%s] %3d%%  %s / %s", string.rep("#", filled),
        string.rep("-", 30 - filled), math.floor(100 * received / total), format_bytes(received),
        format_bytes(total)))
    else
      io_err:write("\r\27[K", format_bytes(received))
    end
    io_err:flush()
  end
  function bar.finish()
    if drawn then
      io_err:write("\r\27[K")
      io_err:flush()
    end
  end
  return bar
end

local function verbose_logger(io_err)
  return function(r)
    local parts = { string.format("tciot: %s attempt %s:", tostring(r.action), tostring(r.attempt)) }
    if r.status == "ok" then
      parts[#parts + 1] = "ok"
    else
      parts[#parts + 1] = tostring(r.code)
      if r.http_status and r.http_status ~= 200 then
        parts[#parts + 1] = "(HTTP " .. tostring(r.http_status) .. ")"
      end
      if r.retryable then
        parts[#parts + 1] = "retryable"
      end
    end
    parts[#parts + 1] = string.format("in %.3fs", tonumber(r.duration) or 0)
    if (tonumber(r.rate_wait) or 0) >= 0.001 then
      parts[#parts + 1] = string.format("after %.3fs in the rate limiter", r.rate_wait)
    end
    if r.bytes then
      parts[#parts + 1] = tostring(r.bytes) .. " bytes"
    end
    if r.request_id then
      parts[#parts + 1] = "RequestId " .. tostring(r.request_id)
    end
    io_err:write(table.concat(parts, " "), "\n")
    io_err:flush()
  end
end

-- ----------------------------------------------------------------------------
-- Running a command.

local function copy_to(path, out)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  while true do
    local chunk = f:read(65536)
    if not chunk then
      break
    end
    out:write(chunk)
  end
  f:close()
  out:flush()
  return true
end

local function params_of(opts, names)
  local p = {}
  for _, n in ipairs(names) do
    p[n] = opts[n]
  end
  return p
end

local function run_describe(client, args, env)
  local o = args.options
  local params = params_of(o, { "ProductId", "BatchProductionId" })
  local batch = require("tencentcloud.iotexplorer.batch")
  local tty = env.tty()
  local res, err
  if o.wait then
    local report, finish = wait_reporter(env.stderr, tty, params.BatchProductionId, batch.STATUS)
    res, err = client:wait_batch_production(params, {
      deadline = o.deadline, interval = o["poll-interval"], max_interval = o["max-poll-interval"],
      on_progress = report,
    })
    finish()
    if not res then
      return nil, err
    end
  end
  if not o.download then
    if not res then
      res, err = client:describe_batch_production(params)
    end
    return res, err
  end

  local to_stdout = o.download == "-"
  local path = o.download
  local now = env.now or require("tencentcloud.iotexplorer.core").now
  if to_stdout then
    -- Whole or nothing on stdout too: the CSV goes to a private file first, printed once complete.
    local tmpdir = os.getenv("TMPDIR")
    path = string.format("%s/tciot-%d-%x.csv", (tmpdir and tmpdir ~= "") and tmpdir or "/tmp", os.time(),
      math.floor(now() * 1e6) % 0x10000000)
  end
  local bar = tty and download_bar(env.stderr, now) or nil
  local out
  out, err = client:download_batch_production(params, path, { on_progress = bar and bar.progress })
  if bar then
    bar.finish()
  end
  if not out then
    return nil, err   -- nothing was left behind, under `path` or next to it
  end
  if to_stdout then
    local ok, cerr = copy_to(path, env.stdout)
    os.remove(path)
    if not ok then
      return nil, { code = errors.FILE_ERROR, message = tostring(cerr), stage = "download" }
    end
    return nil, nil, true
  end
  env.stderr:write(string.format("tciot: saved %d bytes to %s\n", out.bytes, path))
  return out.response
end

local function run_emulator(args, env)
  local argv = {}
  local o = args.options
  argv[#argv + 1] = "--port"
  argv[#argv + 1] = tostring(o.port or 0)
  if o.fixture then
    argv[#argv + 1] = "--fixture"
    argv[#argv + 1] = o.fixture
  end
  if o["exit-on-stdin-eof"] then
    argv[#argv + 1] = "--exit-on-stdin-eof"
  end
  if args.globals.verbose then
    argv[#argv + 1] = "--verbose"
  end
  local ok, emulator = pcall(require, "tencentcloud.iotexplorer.emulator")
  if not ok then
    env.stderr:write("tciot: the emulator needs lua-socket and luaossl: ", tostring(emulator), "\n")
    return EXIT_USAGE
  end
  return emulator.main(argv)
end

local function new_client(args, env)
  local ok, iot = pcall(require, "tencentcloud.iotexplorer")
  if not ok then
    return nil, { code = "ClientError.InvalidParameter",
      message = "cannot load the library (is the native core built for this Lua?): " .. tostring(iot) }
  end
  local g = args.globals
  local endpoint = g.endpoint
  if endpoint and not endpoint:find("^%a[%w+.-]*://") then
    endpoint = "https://" .. endpoint   -- tccli takes a bare host; any other scheme is the library's to refuse
  end
  return iot.new({
    region = g.region, endpoint = endpoint, profile = g.profile, timeout = g.timeout,
    language = g.language, logger = g.verbose and verbose_logger(env.stderr) or nil,
  })
end

local function usage_error(env, message, command)
  env.stderr:write("tciot: ", message, "\n", usage_line(COMMANDS[command] and command or nil), "\n")
  if COMMANDS[command] then
    env.stderr:write("Run 'tciot ", command, " --help' for details.\n")
  else
    env.stderr:write("Run 'tciot --help' for the commands.\n")
  end
  return EXIT_USAGE
end

-- cli.main(argv [, env]) -> exit code. env (for tests): stdout, stderr, tty(), now().
function cli.main(argv, env)
  env = env or {}
  env.stdout = env.stdout or io.stdout
  env.stderr = env.stderr or io.stderr
  env.tty = env.tty or stderr_is_tty

  local list, help = {}, false
  for i = 1, #(argv or {}) do
    list[i] = tostring(argv[i])
    help = help or wants_help(list[i])
  end
  local args, perr, command = cli.parse(list)
  if help then
    -- --help wins over everything else on the line, even a mistake.
    local topic = args and args.command or command
    if topic == "help" and args then
      topic = args.positional[1]
    end
    env.stdout:write(cli.help(COMMANDS[topic] and topic or nil))
    return EXIT_OK
  end
  if not args then
    return usage_error(env, perr, command)
  end
  if args.command == nil then
    return usage_error(env, "no command given", nil)
  end
  if args.command == "help" then
    local topic = args.positional[1]
    if topic and not COMMANDS[topic] then
      return usage_error(env, "unknown command '" .. topic .. "'", nil)
    end
    env.stdout:write(cli.help(topic))
    return EXIT_OK
  end
  local cerr = check_command(args)
  if cerr then
    return usage_error(env, cerr, args.command)
  end
  if args.command == "emulator" then
    return run_emulator(args, env)
  end

  local client, err = new_client(args, env)
  local res, printed
  if client then
    local o = args.options
    if args.command == "DescribeBatchProduction" then
      res, err, printed = run_describe(client, args, env)
    elseif args.command == "CreateBatchProduction" then
      res, err = client:create_batch_production(params_of(o, {
        "ProjectId", "ProductId", "BurnMethod", "GenerationMethod", "BatchCnt", "UploadUrl", "GenerationQRCode" }))
    elseif args.command == "GetBatchProductionsList" then
      res, err = client:get_batch_productions_list(params_of(o, { "ProjectId", "Offset", "Limit" }))
    elseif args.command == "call" then
      res, err = client:call(args.positional[1], o["param-json"] or {})
    end
    client:close()
  end
  if printed then
    return EXIT_OK
  end
  if not res then
    env.stderr:write("tciot: ", tostring(err.code), ": ", tostring(err.message))
    if err.request_id then
      env.stderr:write(" (RequestId: ", tostring(err.request_id), ")")
    end
    env.stderr:write("\n")
    return cli.exit_code(err)
  end
  if args.globals.output == "table" then
    env.stdout:write(cli.to_table(res))
  else
    env.stdout:write(cli.to_json(res))
  end
  return EXIT_OK
end

return cli

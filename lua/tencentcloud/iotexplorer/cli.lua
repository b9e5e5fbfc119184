-- tciot: the command line over the library. bin/tciot only calls cli.main(arg).
--
--   tciot DescribeBatchProduction --ProductId R32ONVL0EU --BatchProductionId LC-ya6zinv9
--   tciot CreateBatchProduction --ProjectId P --ProductId R32ONVL0EU --BurnMethod 0 --GenerationMethod 0 \
--     --BatchCnt 10
--   tciot GetBatchProductionsList --ProjectId P --all
--   tciot DescribeDevice --ProductId R32ONVL0EU --DeviceName dev1
--   tciot call DescribeProduct --param-json '{"ProductId": "R32ONVL0EU"}'
--   tciot emulator --port 0
--
-- Every action of actions.lua is a command (cli/commands.lua); output formats are in cli/format.lua, what
-- goes to stderr in cli/progress.lua, the multi-call commands in cli/run.lua.
--
-- Exit codes: 0 success; 1 the service answered with an error; 2 usage error, invalid
-- parameter or missing credentials; 3 network failure or a deadline; 4 the batch
-- failed or the download could not be completed; 128 + signal when interrupted.

local actions = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local defaults = require("tencentcloud.iotexplorer.defaults")
local errors = require("tencentcloud.iotexplorer.errors")
local commands = require("tencentcloud.iotexplorer.cli.commands")
local format = require("tencentcloud.iotexplorer.cli.format")
local help = require("tencentcloud.iotexplorer.cli.help")
local progress = require("tencentcloud.iotexplorer.cli.progress")
local many = require("tencentcloud.iotexplorer.cli.many")
local run = require("tencentcloud.iotexplorer.cli.run")

local cli = {}

local EXIT_OK, EXIT_SERVICE, EXIT_USAGE, EXIT_NETWORK, EXIT_BATCH = 0, 1, 2, 3, 4
cli.EXIT = { ok = EXIT_OK, service = EXIT_SERVICE, usage = EXIT_USAGE, network = EXIT_NETWORK, batch = EXIT_BATCH }

cli.parse = commands.parse
cli.help = help.help
cli.to_json = format.json
cli.to_table = format.table
cli.to_text = format.text

-- ----------------------------------------------------------------------------
-- Errors and exit codes.

local DOWNLOAD_OR_BATCH = {
  [errors.BATCH_FAILED] = true, [errors.BATCH_NOT_READY] = true,
}

function cli.exit_code(err)
  local code = type(err) == "table" and err.code or ""
  if code == errors.INTERRUPTED then
    return 128 + (tonumber(err.signal) or 2)
  end
  if DOWNLOAD_OR_BATCH[code] or (type(err) == "table" and err.stage == "download") then
    return EXIT_BATCH
  end
  if code == errors.NETWORK_ERROR or code == errors.TIMEOUT then
    return EXIT_NETWORK
  end
  if code == errors.INVALID_PARAMETER or code == errors.CREDENTIAL_ERROR then
    return EXIT_USAGE
  end
  return EXIT_SERVICE
end

local function usage_error(env, message, command)
  local known = commands.by_name[command] and command or nil
  env.err.say(message)
  env.err.raw(help.usage_line(known) .. "\n")
  if known then
    env.err.raw("Run 'tciot " .. command .. " --help' for details.\n")
  else
    env.err.raw("Run 'tciot --help' for the commands.\n")
  end
  return EXIT_USAGE
end

-- A write whose outcome is unknown: it left, and no answer came back.
local function maybe_applied(err)
  if err.maybe_applied ~= nil then
    return err.maybe_applied
  end
  return err.sent == true and err.http_status == nil
end

-- No answer over https from a bare HOST:PORT: the handshake failed (CURLE_SSL_CONNECT_ERROR) or timed out
-- (a plain-HTTP server waits for a request line and never answers a ClientHello), or nothing listens.
local function no_https_answer(err)
  return (err.code == errors.NETWORK_ERROR or err.code == errors.TIMEOUT) and err.http_status == nil
end

local function report_error(env, err, ctx)
  local w = env.err
  local line = tostring(err.code) .. ": " .. tostring(err.message)
  if err.request_id then
    line = line .. " (RequestId: " .. tostring(err.request_id) .. ")"
  end
  w.say(line)
  if ctx.bare_endpoint and no_https_answer(err) then
    w.say("the endpoint ", ctx.bare_endpoint, " has no scheme, so https was used; if the server speaks plain "
      .. "HTTP (such as the emulator), give --endpoint http://", ctx.bare_endpoint)
  end
  if ctx.write and maybe_applied(err) then
    if ctx.command == "CreateBatchProduction" then
      w.say("the request was sent but no answer came back: the batch may or may not have been created. "
        .. "Check before creating it again:")
      w.say("  tciot GetBatchProductionsList --ProjectId ", tostring(ctx.params.ProjectId), " --region ",
        tostring(ctx.region), " --all")
    else
      w.say("the request was sent but no answer came back: ", tostring(ctx.action),
        " may or may not have taken effect; check before sending it again")
    end
  end
  return cli.exit_code(err)
end

-- ----------------------------------------------------------------------------
-- The client, from the options, the environment and tccli's configure file.

local function getenv(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

-- tccli's configure file (~/.tccli/<profile>.configure): {} when there is none, or nil, message when it is
-- not what tccli writes.
local function tccli_configure(profile)
  local credentials = require("tencentcloud.iotexplorer.credentials")
  local conf, err = credentials.tccli_configure(profile)
  if type(conf) ~= "table" then
    return nil, err
  end
  return conf
end

local OUTPUT_SET = {}
for _, name in ipairs(format.OUTPUTS) do OUTPUT_SET[name] = true end

-- The settings: command line, then environment, then tccli's configure file.
local function settings(g)
  local profile = g.profile or getenv("TENCENTCLOUD_PROFILE")
  local s = { profile = g.profile }
  local conf
  local function configured(key)
    if not conf then
      local cerr
      conf, cerr = tccli_configure(profile)
      if not conf then
        conf, s.config_error = {}, cerr
      end
    end
    local v = conf[key]
    if v == "" then return nil end
    return v
  end
  s.region = g.region or getenv(defaults.region_variable) or configured("region")
  s.output = g.output or configured("output")
  if s.output and not OUTPUT_SET[s.output] then
    s.output = nil   -- tccli knows formats tciot does not print
  end
  s.endpoint = g.endpoint or getenv(defaults.endpoint_variable) or configured("endpoint")
  s.language = g.language or configured("language")
  return s
end

local function new_client(args, s, env)
  local ok, iot = pcall(require, "tencentcloud.iotexplorer")
  if not ok then
    return nil, errors.new(errors.INVALID_PARAMETER,
      "cannot load the library (is the native core built for this Lua?): " .. tostring(iot))
  end
  if s.config_error then
    return nil, errors.invalid("profile", tostring(s.config_error))
  end
  if not s.region then
    return nil, errors.invalid("region", "no region given: use --region REGION or set TENCENTCLOUD_REGION"
      .. " (one of " .. table.concat(actions.REGIONS, ", ") .. ")")
  end
  local g = args.globals
  local endpoint = s.endpoint
  if endpoint and not endpoint:find("^%a[%w+.-]*://") then
    -- tccli takes a bare host; any other scheme is the library's to refuse.
    env.bare_endpoint = endpoint
    endpoint = "https://" .. endpoint
  end
  return iot.new({
    region = s.region, endpoint = endpoint, profile = s.profile, timeout = g.timeout,
    language = s.language, ca_file = g["ca-file"], ca_path = g["ca-path"],
    role_arn = g["role-arn"], role_session_name = g["role-session-name"], use_cvm_role = g["use-cvm-role"],
    logger = g.verbose and progress.logger(env.err) or nil,
  })
end

-- ----------------------------------------------------------------------------
-- Commands without a client.

local function run_emulator(args, env)
  local ok, emulator = pcall(require, "tencentcloud.iotexplorer.cli.emulator")
  if not ok then
    env.err.say("the emulator needs lua-socket and luaossl: ", tostring(emulator))
    return EXIT_USAGE
  end
  return emulator.run(args.options, args.globals.verbose, env)
end

local function run_configure(args, env)
  if args.positional[1] ~= "list" then
    return usage_error(env, "configure takes one word: list", "configure")
  end
  local ok, configure = pcall(require, "tencentcloud.iotexplorer.cli.configure")
  if not ok or type(configure) ~= "table" or type(configure.list) ~= "function" then
    env.err.say("configure list is not available in this installation")
    return EXIT_USAGE
  end
  return configure.list(args.globals, env.stdout)
end

-- tciot is part of the library's package: it has the library's version.
local function version_text()
  local ok, iot = pcall(require, "tencentcloud.iotexplorer")
  local line = "tciot " .. tostring(ok and type(iot) == "table" and iot._VERSION or "?")
  local core_ok, core = pcall(require, "tencentcloud.iotexplorer.core")
  line = line .. " (core " .. tostring(core_ok and type(core) == "table" and core._VERSION or "not loaded") .. ")"
  return line .. " on " .. (type(jit) == "table" and jit.version or _VERSION) .. "\n"
end

-- ----------------------------------------------------------------------------
-- Checks parse() cannot do: positional arguments and option combinations.

local function check_command(args)
  local name, cmd = args.command, commands.by_name[args.command]
  local want = (name == "call" or name == "configure") and 1 or (name == "help" and #args.positional or 0)
  if #args.positional > want then
    return "unexpected argument '" .. args.positional[want + 1] .. "'"
  end
  if name == "call" and #args.positional == 0 then
    return "call needs an action name, e.g. tciot call DescribeProduct --param-json '{...}'"
  end
  local opts = args.options
  if name == "DescribeBatchProduction" and many.wanted(args) then
    if opts.download then
      return "--download takes one batch, not several"
    end
    if opts.ProductId == nil and (opts["cli-input-json"] or {}).ProductId == nil then
      return "--ProductId is required"
    end
  elseif cmd.action and not opts["generate-cli-skeleton"] then
    -- The action's own rules (required, required_when, types, ranges) from actions.lua.
    local params = commands.params(cmd, opts)
    local _, perr = check.params(cmd.action, params)
    if perr then
      local field = perr.field and cmd.action.param_by_name[perr.field] and ("--" .. perr.field) or perr.field
      if perr.kind == "missing" then
        return field .. perr.message:sub(#perr.field + 1)
      end
      return tostring(perr)
    end
  end
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
-- Interrupts: the core traps SIGINT and SIGTERM, every blocking step returns ClientError.Interrupted,
-- and tciot removes what it was writing and exits 128 + signal.

local function core_module()
  local ok, core = pcall(require, "tencentcloud.iotexplorer.core")
  return ok and type(core) == "table" and core or nil
end

local function trap_signals()
  local core = core_module()
  if core and type(core.trap_signals) == "function" then
    core.trap_signals(true)
  end
end

local function pending_signal()
  local core = core_module()
  return core and type(core.interrupted) == "function" and core.interrupted() or nil
end

local function interrupted(env, signal)
  env.err.finish()
  for _, path in ipairs(env.temporaries) do
    os.remove(path)
  end
  env.err.say("interrupted")
  return 128 + (tonumber(signal) or 2)
end

-- ----------------------------------------------------------------------------

local function call_action(client, cmd, args, env)
  local o = args.options
  local a = cmd.action
  local params = commands.params(cmd, o)
  if a.name == "DescribeBatchProduction" and many.wanted(args) then
    if type(client.describe_batch_productions) ~= "function" then
      return nil, errors.invalid("BatchProductionId", "this library cannot describe several batches at once")
    end
    local out, worst, ids = many.run(client, args, env, cli.exit_code)
    if not out then
      return nil, worst
    end
    env.many = { exit = worst, rows = many.rows(out, ids) }
    return out
  elseif a.name == "DescribeBatchProduction" then
    return run.describe(client, params, o, env)
  elseif a.name == "GetBatchProductionsList" and o.all then
    return run.list_all(client, params)
  end
  local method = client[a.method]
  if type(method) == "function" then
    return method(client, params)
  end
  return client:call(a.name, params)
end

-- Runs the command; returns res, err, printed (true when it wrote its own output), ctx (for errors).
local function perform(args, s, env)
  local cmd = commands.by_name[args.command]
  local ctx = { command = args.command, region = s.region }
  local client, err = new_client(args, s, env)
  ctx.bare_endpoint = env.bare_endpoint
  if not client then
    return nil, err, false, ctx
  end
  local res, printed
  if cmd.action then
    ctx.write, ctx.action = cmd.action.write, cmd.action.name
    res, err, printed = call_action(client, cmd, args, env)
    ctx.params = commands.params(cmd, args.options)
  else
    local action = args.positional[1]
    ctx.write, ctx.action, ctx.params = actions.is_write(action), action, args.options["param-json"] or {}
    res, err = client:call(action, ctx.params)
  end
  client:close()
  return res, err, printed, ctx
end

-- cli.main(argv [, env]) -> exit code. env (for tests): stdout, stderr, tty(), now().
function cli.main(argv, env)
  env = env or {}
  env.stdout = env.stdout or io.stdout
  local tty = env.tty or function()
    local r = os.execute("test -t 2")
    return r == true or r == 0
  end
  env.err = progress.writer(env.stderr or io.stderr, tty(), env.columns)
  env.now = env.now or require("tencentcloud.iotexplorer.core").now
  env.temporaries = {}
  env.interrupted = pending_signal

  local list, wants_help = {}, false
  for i = 1, #(argv or {}) do
    list[i] = tostring(argv[i])
    wants_help = wants_help or commands.wants_help(list[i])
  end
  local args, perr, command = commands.parse(list)
  if wants_help then
    -- --help wins over everything else on the line, even a mistake.
    local topic = args and args.command or command
    if topic == "help" and args then
      topic = args.positional[1]
    end
    env.stdout:write(help.help(commands.by_name[topic] and topic or nil))
    return EXIT_OK
  end
  if not args then
    return usage_error(env, perr, command)
  end
  if args.globals.version then
    env.stdout:write(version_text())
    return EXIT_OK
  end
  if args.command == nil then
    return usage_error(env, "no command given", nil)
  end
  if args.command == "help" then
    local topic = args.positional[1]
    if topic and not commands.by_name[topic] then
      return usage_error(env, commands.unknown_command(topic), nil)
    end
    env.stdout:write(help.help(topic))
    return EXIT_OK
  end
  local cmd = commands.by_name[args.command]
  if cmd.action and args.options["generate-cli-skeleton"] then
    env.stdout:write(format.json(help.skeleton(cmd.action)))
    return EXIT_OK
  end
  local cerr = check_command(args)
  if cerr then
    return usage_error(env, cerr, args.command)
  end
  if args.command == "emulator" then
    return run_emulator(args, env)
  end
  if args.command == "configure" then
    return run_configure(args, env)
  end

  trap_signals()
  local s = settings(args.globals)
  local res, err, printed, ctx = perform(args, s, env)
  local signal = (err and err.code == errors.INTERRUPTED and (err.signal or 2)) or pending_signal()
  if signal then
    return interrupted(env, signal)
  end
  if printed then
    return EXIT_OK
  end
  if not res then
    return report_error(env, err, ctx)
  end
  if env.many then
    -- Several batches: one array in input order (a row per batch as a table), the worst item's exit code.
    env.stdout:write(format.render(s.output, s.output == "table" and env.many.rows or res))
    return env.many.exit
  end
  env.stdout:write(format.render(s.output, res))
  return EXIT_OK
end

return cli

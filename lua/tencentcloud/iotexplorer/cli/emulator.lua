-- tciot emulator: runs the local API emulator in the foreground. Before EMULATOR_READY it prints the shell
-- lines that point the library and tciot at it (credentials, region and TENCENTCLOUD_IOTEXPLORER_ENDPOINT),
-- so `eval "$(tciot emulator | sed '/^EMULATOR_READY/q')"`-style setups and the README's Lua quick start
-- run unchanged against it.

local emulator_cli = {}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The export lines for an emulator listening at `url` with the given fixture (nil: the default one).
function emulator_cli.export_lines(url, fixture)
  local emulator = require("tencentcloud.iotexplorer.emulator")
  if type(emulator.export_lines) == "function" then
    return emulator.export_lines(url, fixture)
  end
  local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
  local id, key = defaults.SECRET_ID, defaults.SECRET_KEY
  local creds = type(fixture) == "table" and fixture.defaults == false and type(fixture.credentials) == "table"
    and fixture.credentials[1]
  if type(creds) == "table" and creds.secret_id and creds.secret_key then
    id, key = creds.secret_id, creds.secret_key
  end
  return {
    "export TENCENTCLOUD_SECRET_ID=" .. shell_quote(id),
    "export TENCENTCLOUD_SECRET_KEY=" .. shell_quote(key),
    "export TENCENTCLOUD_REGION=ap-guangzhou",
    "export TENCENTCLOUD_IOTEXPLORER_ENDPOINT=" .. shell_quote(url),
  }
end

local function read_fixture(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, "cannot read the fixture: " .. tostring(err)
  end
  local text = f:read("*a")
  f:close()
  local fixture, jerr = require("cjson.safe").decode(text)
  if type(fixture) ~= "table" then
    return nil, "the fixture is not a JSON object: " .. tostring(jerr)
  end
  return fixture
end

-- o: the command's options (port, fixture, exit-on-stdin-eof). Returns the exit code.
function emulator_cli.run(o, verbose, env)
  local emulator = require("tencentcloud.iotexplorer.emulator")
  local w, out = env.err, env.stdout
  local opts = { port = o.port or 0, host = "127.0.0.1", exit_on_stdin_eof = o["exit-on-stdin-eof"] or false }
  if verbose then
    opts.log = function(msg) w.say(msg) end
  end
  if o.fixture then
    local fixture, ferr = read_fixture(o.fixture)
    if not fixture then
      w.say(ferr)
      return 2
    end
    opts.fixture = fixture
  end
  local function ready(url)
    for _, line in ipairs(emulator_cli.export_lines(url, opts.fixture)) do
      out:write(line, "\n")
    end
    out:write("EMULATOR_READY ", url, "\n")
    out:flush()
  end
  -- The emulator's own entry point for a table of options comes with its export lines.
  if type(emulator.export_lines) == "function" and type(emulator.run) == "function" then
    opts.on_ready = ready
    return emulator.run(opts) or 0
  end
  local ok, emu = pcall(emulator.new, opts)
  if not ok then
    w.say("bad fixture: ", tostring(emu))
    return 2
  end
  local port, lerr = emu:listen(opts.exit_on_stdin_eof)
  if not port then
    w.say("cannot listen: ", tostring(lerr))
    return 1
  end
  ready(emu:base_url())
  emu:run()
  return 0
end

return emulator_cli

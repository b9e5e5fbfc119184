-- tciot emulator: runs the local API emulator in the foreground (emulator.run). Once it listens it prints
-- EMULATOR_READY http://HOST:PORT and the shell lines that point the library and tciot at it (credentials,
-- region and TENCENTCLOUD_IOTEXPLORER_ENDPOINT), so the README's Lua quick start runs unchanged against it.

local emulator_cli = {}

-- o: the command's options (port, fixture, exit-on-stdin-eof). Returns the exit code.
function emulator_cli.run(o, verbose, env)
  local ok, emulator = pcall(require, "tencentcloud.iotexplorer.emulator")
  if not ok then
    local stderr = env.stderr or io.stderr
    stderr:write("tciot: ", tostring(emulator), "\n")
    return 2
  end
  return emulator.run({
    port = o.port or 0, host = "127.0.0.1", fixture_file = o.fixture,
    exit_on_stdin_eof = o["exit-on-stdin-eof"] or false, verbose = verbose or false,
    stdout = env.stdout, stderr = env.stderr or io.stderr,
  })
end

return emulator_cli

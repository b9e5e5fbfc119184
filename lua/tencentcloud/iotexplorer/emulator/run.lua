-- Launcher: lua5.4 lua/tencentcloud/iotexplorer/emulator/run.lua [--port N] [--host H] [--fixture F]
--   [--delay-ms N] [--max-connections N] [--exit-on-stdin-eof] [--verbose]
-- Finds the repository's lua/ directory from this script's own path, so any cwd works. Once listening
-- it prints EMULATOR_READY and the export lines that point the library at it (emulator.run).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here .. "/../../.."
package.path = root .. "/?.lua;" .. root .. "/?/init.lua;" .. package.path

local emulator = require("tencentcloud.iotexplorer.emulator")
os.exit(emulator.main(arg))

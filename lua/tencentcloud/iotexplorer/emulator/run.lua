-- Launcher: lua5.4 lua/tencentcloud/iotexplorer/emulator/run.lua [--port N] [--host H] [--fixture F]
-- Finds the repository's lua/ directory from this script's own path, so any cwd works.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here .. "/../../.."
package.path = root .. "/?.lua;" .. root .. "/?/init.lua;" .. package.path

local emulator = require("tencentcloud.iotexplorer.emulator")
os.exit(emulator.main(arg))

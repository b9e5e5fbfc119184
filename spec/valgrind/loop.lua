-- make test-valgrind: many calls through core.call against the local emulator, run
-- under memcheck (the Makefile adds valgrind). Not a busted spec: a plain script, so that valgrind watches
-- one interpreter and nothing else. The emulator runs natively in its own process (valgrind does not
-- follow children, and the helper unsets LD_PRELOAD for it).
--   lua5.4 spec/valgrind/loop.lua [calls]      (default 10000, or $TCIOT_VALGRIND_CALLS)
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("TCIOT_CPATH") or "build/lua5.4/?.so") .. ";" .. package.cpath

local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")

local calls = tonumber(arg[1] or os.getenv("TCIOT_VALGRIND_CALLS") or 10000)
local emu = emulator.start{ fixture = { rate_limit = 1000000 }, timeout = 60 }

local function request(batch)
  return {
    secret_id = emu.secret_id, secret_key = emu.secret_key, action = "DescribeBatchProduction",
    version = "2019-04-23", params = { ProductId = "R32ONVL0EU", BatchProductionId = batch }, timeout = 30,
  }
end
local host, port = emu.url:match("^http://([^:/]+):(%d+)")

local counts = { ok = 0, api_error = 0, input_error = 0, downloads = 0, gets = 0 }
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 0700 " .. dir))
local function fail(i, what)
  emu:stop()
  io.stderr:write(string.format("call %d: %s\n", i, what))
  os.exit(1)
end

local started = os.time()
local session
for i = 1, calls do
  -- A fresh session every 1,000 calls, so session creation and release are in the loop too.
  if i % 1000 == 1 then
    if session then session:close() end
    session = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou",
      timeout = 30, connect_timeout = 10 })
  end
  if i % 100 == 50 then
    -- A download into a private temporary, renamed into place; and a plain GET on a connection of its own.
    local res = assert(core.call(session, request("LC-ya6zinv9")))
    local out, err = core.download(session, { url = res.DownloadUrl, path = dir .. "/devices.csv", timeout = 30 })
    if not out then fail(i, "download failed: " .. tostring(err and err.message)) end
    os.remove(dir .. "/devices.csv")
    local body, status = core.http_get(emu.url .. "/_emulator/counters", { timeout = 30 })
    if status ~= 200 or type(body) ~= "string" then fail(i, "http_get failed") end
    counts.downloads, counts.gets = counts.downloads + 1, counts.gets + 1
  elseif i % 100 == 0 then
    -- Refused before any I/O: misuse raises (a Lua error through the argument checks), and params JSON
    -- cannot hold come back as an error table.
    local req = request("LC-ya6zinv9")
    req.action = ""
    local ok = pcall(core.call, session, req)
    if ok then fail(i, "an empty action did not raise") end
    req = request("LC-ya6zinv9")
    req.params.f = print
    local res, err = core.call(session, req)
    if res or err.field ~= "f" then fail(i, "params holding a function were not refused") end
    counts.input_error = counts.input_error + 1
  elseif i % 10 == 0 then
    -- An API error envelope: the error table path of the decoder.
    local res, err = core.call(session, request("LC-missing0"))
    if res or err.code ~= "ResourceNotFound.BatchProductionNotExist" then
      fail(i, "want ResourceNotFound.BatchProductionNotExist, got " .. tostring(err and err.code))
    end
    counts.api_error = counts.api_error + 1
  else
    local res, err = core.call(session, request("LC-ya6zinv9"))
    if not res or res.BatchCnt ~= 3 or type(res.RequestId) ~= "string" then
      fail(i, "want the documented batch, got " .. tostring(err and (err.code .. ": " .. err.message)))
    end
    counts.ok = counts.ok + 1
  end
end
session:close()
emu:stop()
os.remove(dir)
print(string.format("valgrind loop: %d calls (%d results, %d API errors, %d refused inputs, %d downloads, %d gets)"
  .. " in %d s", calls, counts.ok, counts.api_error, counts.input_error, counts.downloads, counts.gets,
  os.time() - started))

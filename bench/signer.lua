-- The bound-signer rows of `make bench`, one measurement per process, under lua5.4 or luajit from the
-- repository root:
--
--   <lua> bench/signer.lua MODE SECONDS      MODE: bound (signer.lua: the FFI entry on LuaJIT) | bound_capi
--
-- Prints "RESULT <signatures per wall second> <CPU microseconds per signature> <signatures>", as
-- bench/driver.lua does, after checking the signer against the published vector. The request is the one
-- every signing baseline signs (bench/sign_common.h), the key cache warm. Not a spec.
local lua_dir = jit and "luajit" or "lua5.4"
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/" .. lua_dir .. "/?.so;" .. package.cpath

local core = require("tencentcloud.iotexplorer.core")
local signer = require("tencentcloud.iotexplorer.signer")

local mode, seconds = arg[1], tonumber(arg[2] or "0.3")
local SECRET_ID, SECRET_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local PAYLOAD = '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9"}'
local TIMESTAMP = 1551113065
local VEC_PAYLOAD = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
local VEC_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

local function new(o)
  if mode == "bound_capi" then return assert(core.signer(o)) end
  if mode == "bound" then return assert(signer.new(o)) end
  io.stderr:write("signer.lua: unknown mode ", tostring(mode), "\n")
  os.exit(2)
end

local vec = new{ secret_id = SECRET_ID, secret_key = SECRET_KEY, region = "ap-guangzhou", service = "cvm",
  host = "cvm.tencentcloudapi.com", content_type = "application/json; charset=utf-8" }
local auth = vec:sign("DescribeInstances", "2017-03-12", TIMESTAMP, VEC_PAYLOAD)
assert(auth:sub(-64) == VEC_SIGNATURE, "the bound signer disagrees with the published vector")
vec:close()

local s = new{ secret_id = SECRET_ID, secret_key = SECRET_KEY, region = "ap-guangzhou",
  host = "iotexplorer.tencentcloudapi.com" }
local ACTION, VERSION = "DescribeBatchProduction", "2019-04-23"
local i = 0
local function step()
  i = i + 1
  return s:sign(ACTION, VERSION, TIMESTAMP + i % 1024, PAYLOAD)
end

local warm_until = core.now() + math.min(0.05, seconds / 4)
while core.now() < warm_until do step() end
local ops, wall0, cpu0 = 0, core.now(), os.clock()
local wall
repeat
  for _ = 1, 256 do step() end
  ops = ops + 256
  wall = core.now() - wall0
until wall >= seconds
print(string.format("RESULT %.1f %.3f %d", ops / wall, (os.clock() - cpu0) * 1e6 / ops, ops))

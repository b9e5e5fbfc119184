-- Inside nginx the STS call runs in the thread pool and the caller yields, so light threads really do meet
-- a refresh in flight: fifty of them at once must cause one AssumeRole.
local emulator = require("helpers.emulator")
local nginx = require("helpers.nginx")
local util = require("helpers.util")

local available, why = nginx.find()
local describe_nginx = available and util.FLAVOUR == "luajit" and describe or pending
if not available then print("skipping the nginx credential specs: " .. why) end

describe_nginx("credentials inside nginx", function()
  local emu, ng

  setup(function()
    local fixture = emulator.defaults.fixture()
    fixture.rate_limit = 0
    emu = emulator.start{ fixture = fixture }
    ng = nginx.start{ template = util.ROOT .. "/spec/helpers/nginx_credentials.conf.in", vars = {
      EMULATOR = emu.url, SECRET_ID = emu.secret_id, SECRET_KEY = emu.secret_key,
      ROLE_ARN = emulator.defaults.ROLE_ARN,
    } }
  end)

  teardown(function()
    if ng then ng:stop() end
    if emu then emu:stop() end
  end)

  it("fifty light threads sharing a client cause one AssumeRole", function()
    local status, _, body = ng:get("/concurrent?n=50")
    assert.equal(200, status)
    assert.equal("ok=50 errors=0", body:gsub("%s+$", ""))
    assert.equal(1, emu:sts().by_action.AssumeRole)
    assert.equal(0, #ng:serious_errors())
  end)
end)

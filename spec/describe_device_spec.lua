-- A fourth action, end to end from its table: client:describe_device, tciot DescribeDevice and the
-- emulator answering for the devices of its finished batches. The device secret (DevicePsk) reaches the
-- caller and nothing else: no log record, no error, no --verbose line.
local iot = require("tencentcloud.iotexplorer")
local emulator = require("helpers.emulator")
local leaks = require("helpers.leaks")
local util = require("helpers.util")

local PRODUCT, BATCH = "R32ONVL0EU", "LC-ya6zinv9"

describe("DescribeDevice", function()
  local emu, client, seen, dir
  local psk, name

  setup(function()
    emu = emulator.start()
    seen = leaks.new()
    dir = util.tmpdir()
    client = assert(iot.new{ endpoint = emu.url, region = "ap-guangzhou", secret_id = emu.secret_id,
      secret_key = emu.secret_key, metadata_endpoint = false, logger = seen:logger(), backoff_base = 0.01 })
    -- The device file of a finished batch names the devices and holds their secrets.
    local path = dir .. "/devices.csv"
    assert(client:download_batch_production({ ProductId = PRODUCT, BatchProductionId = BATCH }, path))
    local f = assert(io.open(path, "rb"))
    local csv = f:read("*a")
    f:close()
    for line in csv:gmatch("[^\r\n]+") do
      -- ProductId,DeviceName,DeviceSecret
      local n, secret = line:match("^" .. PRODUCT .. ",([%w_]+),(%x+)$")
      if n and not name then name, psk = n, secret end
    end
    assert.is_string(name, "a device line in: " .. csv:sub(1, 200))
  end)

  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
    util.rm_rf(dir)
  end)

  it("is a typed method made from the action table, answered by the emulator", function()
    local res, err = client:describe_device{ ProductId = PRODUCT, DeviceName = name }
    assert.is_nil(err)
    assert.equal(name, res.Device.DeviceName)
    assert.equal(psk, res.Device.DevicePsk)
    assert.is_string(res.RequestId)
    local by_id = assert(client:describe_device{ DeviceId = PRODUCT .. "/" .. name })
    assert.equal(name, by_id.Device.DeviceName)
  end)

  it("checks its parameters from the table: DeviceName unless DeviceId, no unknown key", function()
    local before = emu:counters().requests
    local _, err = client:describe_device{ ProductId = PRODUCT }
    assert.equal("DeviceName", err.field)
    _, err = client:describe_device{ ProductId = PRODUCT, DeviceNmae = name }
    assert.equal("DeviceNmae", err.field)
    assert.truthy(err.message:find("did you mean DeviceName?", 1, true), err.message)
    assert.equal(before, emu:counters().requests)
  end)

  it("reports an unknown device as the service does", function()
    local _, err = client:describe_device{ ProductId = PRODUCT, DeviceName = "nobody_0001" }
    seen:see(err)
    assert.equal("ResourceNotFound.DeviceNotExist", err.code)
  end)

  it("is a tciot command with its parameters as options, secrets kept off stderr", function()
    local q = util.shell_quote
    local out, errf = dir .. "/stdout", dir .. "/stderr"
    local cmd = table.concat({ "env -i PATH=/usr/bin:/bin HOME=" .. q(dir),
      "TENCENTCLOUD_SECRET_ID=" .. q(emu.secret_id),
      "TENCENTCLOUD_SECRET_KEY=" .. q(emu.secret_key), util.INTERPRETER, q(util.ROOT .. "/bin/tciot"),
      "--endpoint", q(emu.url), "--region ap-guangzhou --verbose DescribeDevice --ProductId", PRODUCT,
      "--DeviceName", q(name), ">", q(out), "2>", q(errf) }, " ")
    local ok = util.execute(cmd)
    local stdout, stderr = util.read_file(out), util.read_file(errf)
    assert.is_true(ok, stderr)
    assert.truthy(stdout:find(name, 1, true))
    assert.is_nil(stderr:find(psk, 1, true))
    assert.truthy(stderr ~= "", "--verbose writes a line per attempt")
  end)

  it("never put the device secret in a log record or an error", function()
    assert.is_true(#seen.records > 3)
    assert.is_nil(seen:find({ psk, emu.secret_key }))
  end)
end)

-- The device CSV holds every device's secret. `tciot --download -` must never give it a name in a shared
-- folder, not even for a moment: strace records every file the process creates, and none may be a named
-- file under TMPDIR (a nameless O_TMPFILE is fine). Files that do get a name are 0600 from the first byte.
local tciot = require("helpers.tciot")
local util = require("helpers.util")

local PRODUCT = "R32ONVL0EU"

describe("device files", function()
  local t, shared

  setup(function()
    t = tciot.start()
    shared = util.tmpdir()
  end)

  teardown(function()
    if t then t:stop() end
    util.rm_rf(shared)
  end)

  local function seed()
    return t.emu:seed{ ProductId = PRODUCT, BatchCnt = 5, Status = 3 }[1].BatchProductionId
  end

  it("--download - creates no named file in TMPDIR while it runs", function()
    local id = seed()
    local trace = shared .. "/../strace-" .. id .. ".log"
    local cmd = t:command({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
      "--download", "-" }, { env = { TMPDIR = shared } })
    local ok = util.execute("strace -f -qq -e trace=open,openat,creat -o " .. util.shell_quote(trace) .. " "
      .. cmd .. " >/dev/null 2>&1")
    assert.is_true(ok)
    local log = assert(util.read_file(trace))
    os.remove(trace)
    local creates = {}
    for line in log:gmatch("[^\n]+") do
      if line:find(shared, 1, true) and (line:find("O_CREAT", 1, true) or line:find("creat%(")) then
        creates[#creates + 1] = line
      end
    end
    assert.same({}, creates)
    assert.same({}, util.listing(shared))
  end)

  it("a named download is 0600 under umask 022, and a 0600 target stays 0600", function()
    local id = seed()
    local path = shared .. "/devices.csv"
    local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
      "--download", path })
    assert.equal(0, r.code, r.stderr)
    local _, mode = util.run("umask 022; stat -c %a " .. util.shell_quote(path))
    assert.equal("600", mode:match("%d+"))
    os.remove(path)
  end)
end)

-- tciot DescribeBatchProduction over several batches: --BatchProductionId more than once and
-- --BatchProductionIds-file FILE|-, one JSON array in input order (one table row per batch), --wait with one
-- progress line counting done / processing / failed, the worst item's exit code, --concurrency.
local tciot = require("helpers.tciot")
local util = require("helpers.util")

local expect, json = tciot.expect, tciot.json
local PRODUCT = "R32ONVL0EU"

describe("tciot DescribeBatchProduction over several batches", function()
  local h = tciot.hooks(0.2)
  local t, emu
  setup(function() h.setup(); t, emu = h.t, h.emu end)
  teardown(h.teardown)
  before_each(h.before_each)

  local function seed(b)
    b.ProductId = PRODUCT
    return emu:seed(b)[1].BatchProductionId
  end

  it("prints one JSON array in input order, from options and from a file", function()
    local a, b = seed({ BatchCnt = 2, Status = 3 }), seed({ BatchCnt = 7, Status = 3 })
    local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", b,
      "--BatchProductionId", "LC-ya6zinv9", "--BatchProductionId", a })
    expect(r, 0)
    local out = json(r)
    assert.are.same({ 7, 3, 2 }, { out[1].BatchCnt, out[2].BatchCnt, out[3].BatchCnt })
    assert.matches("^%[\n", r.stdout)
    local file = t.work .. "/ids.txt"
    util.write_file(file, a .. "\n\n  " .. b .. "  \n")
    r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionIds-file", file })
    expect(r, 0)
    out = json(r)
    assert.are.same({ 2, 7 }, { out[1].BatchCnt, out[2].BatchCnt })
    -- - reads stdin.
    r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionIds-file", "-" },
      { stdin = file })
    expect(r, 0)
    assert.are.equal(2, #json(r))
  end)

  it("prints one table row per batch, and exits with the worst item's code", function()
    local a = seed({ BatchCnt = 2, Status = 3 })
    local r = t:run({ "--output", "table", "DescribeBatchProduction", "--ProductId", PRODUCT,
      "--BatchProductionId", a, "--BatchProductionId", "LC-missing0" })
    expect(r, 1, "tciot: LC-missing0: ResourceNotFound.BatchProductionNotExist: ")
    assert.truthy(r.stdout:find("^Batches %(2%)\n"), r.stdout)
    assert.truthy(r.stdout:find("| " .. a .. " ", 1, true), r.stdout)
    assert.truthy(r.stdout:find("| LC-missing0 ", 1, true), r.stdout)
  end)

  it("--wait waits for all with one progress line counting done, processing and failed", function()
    local a = seed({ BatchCnt = 3 })
    local b = seed({ BatchCnt = 2, fail_reason = "bad names", fail_status = 1 })
    local c = seed({ BatchCnt = 1 })
    local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", a,
      "--BatchProductionId", b, "--BatchProductionId", c, "--wait", "--poll-interval", "0.1",
      "--max-poll-interval", "0.2", "--concurrency", "2" })
    expect(r, 4, "tciot: " .. b .. ": ClientError.BatchFailed: batch " .. b .. " failed: bad names")
    assert.matches("tciot: 3 batches: %d done, %d processing, %d failed, %d+%.%ds\n", r.stderr)
    assert.matches("tciot: 3 batches: 2 done, 0 processing, 1 failed, %d+%.%ds\n", r.stderr)
    local out = json(r)
    assert.are.same({ 3, 1, 3 }, { out[1].Status, out[2].Status, out[3].Status })
    assert.are.equal("bad names", out[2].LastFailedReason)
    -- At most two requests in flight at once.
    assert.is_true(emu:counters().max_in_flight <= 2, "max in flight: " .. emu:counters().max_in_flight)
  end)

  it("refuses --download with several batches and a missing ProductId, before any request", function()
    local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "a",
      "--BatchProductionId", "b", "--download", "x.csv" })
    expect(r, 2, "--download takes one batch")
    r = t:run({ "DescribeBatchProduction", "--BatchProductionId", "a", "--BatchProductionId", "b" })
    expect(r, 2, "--ProductId is required")
    r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionIds-file", t.work .. "/none" })
    expect(r, 2, "--BatchProductionIds-file: cannot read")
    assert.are.equal(0, emu:counters().requests)
  end)
end)

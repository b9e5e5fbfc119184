-- A real tciot process interrupted with kill -INT / -TERM: while --wait pauses, while a request waits for
-- a slow answer, and while a download is stalled. Each time it ends within about a second, prints
-- "tciot: interrupted", exits 130 (SIGINT) or 143 (SIGTERM) and leaves no temporary or partial file.
local socket = require("socket")
local tciot = require("helpers.tciot")
local util = require("helpers.util")

local PRODUCT = "R32ONVL0EU"
local q = util.shell_quote

-- The core's promise is one second; a loaded two-core machine gets generous room on top.
local WITHIN = 3

-- A download stalled before its first byte ends only once core.download watches the trap as core.call does
-- (src/download.c); tciot's own check runs in the progress callback, which libcurl calls once data flows.
local download_watches = (util.read_file(util.ROOT .. "/src/download.c") or ""):find("watch_begin", 1, true)
local it_download = download_watches and it or pending

describe("tciot interrupted", function()
  local h = tciot.hooks(60)
  local t, emu
  setup(function() h.setup(); t, emu = h.t, h.emu end)
  teardown(h.teardown)
  before_each(h.before_each)

  local function seed()
    return emu:seed({ ProductId = PRODUCT, BatchCnt = 50 })[1].BatchProductionId
  end

  -- Sends `signal` once `ready()` holds; returns the exit code, the seconds from the kill to the exit,
  -- and the process handle.
  local function interrupt(p, signal, ready)
    util.wait_for("tciot to reach the step under test", ready, 15)
    local sent = socket.gettime()
    assert(util.execute("kill -" .. signal .. " " .. p.pid))
    local code = p:wait(15)
    return code, socket.gettime() - sent
  end

  local function assert_interrupted(p, code, took, want)
    assert.are.equal(want, code, "exit code; stderr: " .. p.stderr())
    assert.is_true(took < WITHIN, "took " .. took .. " s after the signal")
    assert.matches("tciot: interrupted\n$", p.stderr())
  end

  for _, case in ipairs({ { "INT", 130 }, { "TERM", 143 } }) do
    local signal, want = case[1], case[2]

    it("ends a --wait pause on SIG" .. signal, function()
      local id = seed()
      local p = t:spawn({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "30", "--deadline", "120" })
      local code, took = interrupt(p, signal, function()
        return p.stderr():find("Status 0", 1, true)
      end)
      assert_interrupted(p, code, took, want)
      assert.are.equal(1, emu:counters().by_action.DescribeBatchProduction)
    end)

    it("ends a request waiting for a slow answer on SIG" .. signal, function()
      emu:fault({ kind = "delay", seconds = 30, action = "DescribeBatchProduction" })
      -- An earlier case's delayed answer may still be in flight: count from here.
      local before = emu:counters().in_flight
      local p = t:spawn({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "LC-ya6zinv9" })
      local code, took = interrupt(p, signal, function()
        return emu:counters().in_flight > before
      end)
      assert_interrupted(p, code, took, want)
    end)

    it_download("ends a stalled download on SIG" .. signal .. ", leaving no partial or temporary file", function()
      local out = t.work .. "/dl-" .. signal
      local tmp = out .. "/tmp"
      assert(util.execute("mkdir -p " .. q(tmp)))
      for _, target in ipairs({ out .. "/devices.csv", "-" }) do
        emu:fault({ kind = "delay", seconds = 30, action = "_download" })
        local p = t:spawn({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "LC-ya6zinv9",
          "--download", target }, { env = { TMPDIR = tmp } })
        local code, took = interrupt(p, signal, function()
          return emu:counters().downloads >= 1
        end)
        assert_interrupted(p, code, took, want)
        assert.are.same({ "tmp" }, util.listing(out))
        assert.are.same({}, util.listing(tmp))
        assert.are.equal("", p.stdout())
        emu:reset()
      end
    end)
  end
end)

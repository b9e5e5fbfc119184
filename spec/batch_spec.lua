-- client:wait_batch_production and client:download_batch_production (batch.lua) against the
-- local API emulator: every status, failed batches, the deadline, errors while polling, progress
-- callbacks, expired links, cut transfers, and that no partial file is ever left behind.
local iot = require("tencentcloud.iotexplorer")
local emulator = require("helpers.emulator")
local leaks = require("helpers.leaks")
local util = require("helpers.util")
local range_server = require("helpers.range_server")
local batch_helpers = require("tencentcloud.iotexplorer.batch")

local PRODUCT = "R32ONVL0EU"
local DOC_BATCH = { ProductId = PRODUCT, BatchProductionId = "LC-ya6zinv9" }
local STEP = 0.15   -- seconds per Status step of batches that progress

local read, write = util.read_file, util.write_file

-- Names in `dir` that start with `prefix`, and any temporary the core makes there (".tciot-XXXXXX").
local function files_like(dir, prefix)
  local out = {}
  for _, name in ipairs(util.listing(dir)) do
    if name:sub(1, #prefix) == prefix or name:find("^%.tciot%-") then out[#out + 1] = name end
  end
  return out
end

describe("batch production helpers", function()
  local emu, seen, client, dir

  local function new(o)
    o = o or {}
    o.region, o.endpoint = "ap-guangzhou", emu.url
    o.secret_id, o.secret_key = emu.secret_id, emu.secret_key
    o.logger = o.logger or seen:logger()
    o.backoff_base = 0.01
    o.metadata_endpoint = false
    return seen:see(assert(iot.new(o)))
  end

  -- A batch seeded into the emulator; returns its DescribeBatchProduction params.
  local function seed(b)
    b.ProductId = b.ProductId or PRODUCT
    local batch = emu:seed(b)[1]
    return { ProductId = b.ProductId, BatchProductionId = batch.BatchProductionId }
  end

  -- The CSV as the emulator serves it, fetched without the client.
  local function expected_csv(params)
    local res = assert(client:describe_batch_production(params))
    local path = res.DownloadUrl:match("^http://[^/]+(/.*)$")
    local status, _, body = emulator.http(emu.host, emu.port, { path = path })
    assert.are.equal(200, status)
    return body
  end

  setup(function()
    emu = emulator.start({ fixture = { status_step_seconds = STEP } })
    seen = leaks.new()
    client = new()
    dir = util.tmpdir()
  end)

  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
    util.rm_rf(dir)
    for _, text in ipairs(seen.texts) do
      assert.is_nil(text:find(emu.secret_key, 1, true))
    end
  end)

  before_each(function()
    emu:reset()
    emu:set({ download_ttl = 900, status_step_seconds = STEP })
  end)

  describe("wait_batch_production", function()
    it("polls through every status and returns the final response", function()
      local params = seed({ BatchCnt = 4 })
      local statuses, last_elapsed = {}, -1
      local res, err = client:wait_batch_production(params, {
        interval = 0.03, max_interval = 0.05, deadline = 5,
        on_progress = function(r, elapsed)
          assert.is_true(elapsed >= last_elapsed)
          last_elapsed = elapsed
          if statuses[#statuses] ~= r.Status then statuses[#statuses + 1] = r.Status end
        end,
      })
      assert.is_nil(err)
      assert.are.equal(3, res.Status)
      assert.are.equal(4, res.SuccessCount)
      assert.is_string(res.RequestId)
      assert.matches("/_download/", res.DownloadUrl)
      assert.are.same({ 0, 1, 2, 3 }, statuses)
    end)

    it("backs off from interval up to max_interval", function()
      local params = seed({ BatchCnt = 1, Status = 1 })
      local _, err = client:wait_batch_production(params, { interval = 0.05, max_interval = 0.1, deadline = 0.6 })
      assert.are.equal("ClientError.Timeout", err.code)
      -- Pauses 0.05, 0.075, 0.1, 0.1, ...: about 7 polls in 0.6 s (never 0.6 / 0.05 = 12).
      local polls = emu:counters().by_action.DescribeBatchProduction
      assert.is_true(polls >= 5 and polls <= 8, "polls: " .. polls)
      assert.are.equal(polls, err.attempts)
    end)

    it("returns at once for a batch that is already done", function()
      local res = assert(client:wait_batch_production(DOC_BATCH))
      assert.are.equal(3, res.Status)
      assert.are.equal(1, emu:counters().requests)
    end)

    it("returns ClientError.BatchFailed with the reason when the batch fails", function()
      local params = seed({ BatchCnt = 4, fail_reason = "device name file is malformed", fail_status = 1 })
      local res, err = client:wait_batch_production(params, { interval = 0.03, deadline = 5 })
      assert.is_nil(res)
      assert.is_true(iot.is_error(err))
      assert.are.equal("ClientError.BatchFailed", err.code)
      assert.are.equal("device name file is malformed", err.reason)
      assert.truthy(tostring(err):find("device name file is malformed", 1, true))
      assert.truthy(tostring(err):find(params.BatchProductionId, 1, true))
      assert.are.equal(1, err.response.Status)
      assert.are.equal(2, err.response.SuccessCount)
      assert.are.equal(err.response.RequestId, err.request_id)
      assert.is_false(err.retryable)
    end)

    it("returns ClientError.Timeout past the deadline, with the last status seen", function()
      local params = seed({ BatchCnt = 2, Status = 2 })
      local started = os.time()
      local t0 = require("tencentcloud.iotexplorer.core").now()
      local res, err = client:wait_batch_production(params, { interval = 0.1, deadline = 0.5 })
      local took = require("tencentcloud.iotexplorer.core").now() - t0
      assert.is_nil(res)
      assert.are.equal("ClientError.Timeout", err.code)
      assert.is_true(err.deadline)
      assert.are.equal(2, err.response.Status)
      assert.truthy(err.message:find("Status 2 (uploading results)", 1, true))
      assert.is_true(took >= 0.5 and took < 0.8, "took " .. took)
      assert.is_true(os.time() - started <= 2)
    end)

    it("bounds a slow request by the deadline too", function()
      local params = seed({ BatchCnt = 2, Status = 1 })
      emu:fault({ kind = "delay", seconds = 2, action = "DescribeBatchProduction", count = 0 })
      local t0 = require("tencentcloud.iotexplorer.core").now()
      local _, err = client:wait_batch_production(params, { deadline = 0.4 })
      local took = require("tencentcloud.iotexplorer.core").now() - t0
      assert.are.equal("ClientError.Timeout", err.code)
      assert.is_true(took < 0.8, "took " .. took)
    end)

    it("keeps polling through errors the client retried in vain", function()
      local c = new({ max_attempts = 1 })
      emu:fault({ kind = "status", status = 503, count = 3, action = "DescribeBatchProduction" })
      local res, err = c:wait_batch_production(DOC_BATCH, { interval = 0.02, deadline = 5 })
      c:close()
      assert.is_nil(err)
      assert.are.equal(3, res.Status)
      assert.are.equal(4, emu:counters().by_action.DescribeBatchProduction)
    end)

    it("reports the last error when the deadline passes while the service keeps failing", function()
      local c = new({ max_attempts = 1 })
      emu:fault({ kind = "status", status = 503, count = 0, action = "DescribeBatchProduction" })
      local _, err = c:wait_batch_production(DOC_BATCH, { interval = 0.05, deadline = 0.3 })
      c:close()
      assert.are.equal("ClientError.Timeout", err.code)
      assert.are.equal(503, err.cause.http_status)
      assert.truthy(err.message:find("last error: InternalError", 1, true))
    end)

    it("says which it waited for past the deadline: the batch, or the service", function()
      local params = seed({ BatchCnt = 2, Status = 1 })
      local _, err = client:wait_batch_production(params, { interval = 0.05, deadline = 0.3 })
      assert.are.equal("batch", err.waiting_for)
      assert.truthy(err.message:find("was not done within the deadline of 0.3s (last seen: Status 1", 1, true),
        err.message)
      -- Seen once, then the service stops answering: that is what the deadline reports, with the last status.
      local c = new({ max_attempts = 1 })
      local polls = 0
      _, err = c:wait_batch_production(params, { interval = 0.05, deadline = 0.4, on_progress = function()
        polls = polls + 1
        emu:fault({ kind = "status", status = 503, count = 0, action = "DescribeBatchProduction" })
      end })
      c:close()
      assert.are.equal(1, polls)
      assert.are.equal("service", err.waiting_for)
      assert.truthy(err.message:find("the service did not answer for batch " .. params.BatchProductionId, 1, true),
        err.message)
      assert.truthy(err.message:find("last error: InternalError", 1, true), err.message)
      assert.truthy(err.message:find("(last seen: Status 1", 1, true), err.message)
    end)

    it("reports each failed poll to on_retry, which may cancel", function()
      local c = new({ max_attempts = 1 })
      emu:fault({ kind = "status", status = 503, count = 2, action = "DescribeBatchProduction" })
      local codes = {}
      local res = assert(c:wait_batch_production(DOC_BATCH, { interval = 0.02, deadline = 5,
        on_retry = function(e, elapsed)
          codes[#codes + 1] = e.code
          assert.is_number(elapsed)
        end }))
      assert.are.equal(3, res.Status)
      assert.are.same({ "InternalError", "InternalError" }, codes)
      emu:fault({ kind = "status", status = 503, count = 0, action = "DescribeBatchProduction" })
      local _, err = c:wait_batch_production(DOC_BATCH, { interval = 0.02, on_retry = function() return false end })
      c:close()
      assert.are.equal("ClientError.Cancelled", err.code)
    end)

    it("calls on_tick at least every second while it pauses", function()
      local params = seed({ BatchCnt = 1, Status = 1 })
      local ticks = {}
      local _, err = client:wait_batch_production(params, { interval = 5, deadline = 2.5,
        on_tick = function(elapsed) ticks[#ticks + 1] = elapsed end })
      assert.are.equal("ClientError.Timeout", err.code)
      assert.are.equal(1, emu:counters().by_action.DescribeBatchProduction)
      assert.is_true(#ticks >= 2 and #ticks <= 4, "ticks: " .. #ticks)
      for i = 2, #ticks do
        assert.is_true(ticks[i] - ticks[i - 1] <= 1.5, "a tick came late: " .. (ticks[i] - ticks[i - 1]))
      end
    end)

    it("stops at the first error that retrying cannot fix", function()
      local _, err = client:wait_batch_production({ ProductId = PRODUCT, BatchProductionId = "LC-missing0" })
      assert.are.equal("ResourceNotFound.BatchProductionNotExist", err.code)
      assert.are.equal(1, emu:counters().requests)
    end)

    it("stops when on_progress returns false, and reports an on_progress error", function()
      local params = seed({ BatchCnt = 1, Status = 1 })
      local _, err = client:wait_batch_production(params, { on_progress = function() return false end })
      assert.are.equal("ClientError.Cancelled", err.code)
      _, err = client:wait_batch_production(params, { on_progress = function() error("boom") end })
      assert.are.equal("ClientError.CallbackError", err.code)
      assert.truthy(err.message:find("boom", 1, true))
      assert.are.equal(2, emu:counters().requests)
    end)

    it("checks its options before any request, and never raises", function()
      local cases = {
        { { deadline = 0 }, "deadline" }, { { deadline = "soon" }, "deadline" },
        { { interval = -1 }, "interval" }, { { on_progress = 1 }, "on_progress" },
        { { dealine = 5 }, "dealine" }, { "fast", "opts" },
      }
      for _, case in ipairs(cases) do
        local res, err = client:wait_batch_production(DOC_BATCH, case[1])
        assert.is_nil(res)
        assert.are.equal("ClientError.InvalidParameter", err.code)
        assert.are.equal(case[2], err.field)
      end
      local _, err = client:wait_batch_production({ ProductId = PRODUCT })
      assert.are.equal("BatchProductionId", err.field)
      _, err = client.wait_batch_production(DOC_BATCH)
      assert.are.equal("ClientError.InvalidParameter", err.code)
      assert.are.equal(0, emu:counters().requests)
    end)
  end)

  describe("download_batch_production", function()
    local path
    before_each(function()
      path = dir .. "/devices.csv"
      os.remove(path)
    end)

    it("saves the device CSV, renamed into place when complete", function()
      local params = seed({ BatchCnt = 5, Status = 3 })
      local calls, last_received, last_total = 0, 0, 0
      local out, err = client:download_batch_production(params, path, {
        on_progress = function(received, total)
          calls = calls + 1
          last_received, last_total = received, total
        end,
      })
      assert.is_nil(err)
      local record = seen.records[#seen.records]
      local csv = read(path)
      assert.are.equal(expected_csv(params), csv)
      assert.are.equal(path, out.path)
      assert.are.equal(#csv, out.bytes)
      assert.are.equal(0, out.refreshes)
      assert.are.equal(3, out.response.Status)
      assert.is_true(calls > 0)
      assert.are.equal(#csv, last_received)
      assert.are.equal(#csv, last_total)
      assert.are.same({ "devices.csv" }, files_like(dir, "devices.csv"))
      -- The download shows in the logger like any attempt, and the record holds no link.
      assert.are.equal("download", record.action)
      assert.are.equal("ok", record.status)
      assert.are.equal(#csv, record.bytes)
      for _, v in pairs(record) do
        assert.is_nil(tostring(v):find("sig=", 1, true))
      end
    end)

    it("replaces a file that is already there only once the new one is complete", function()
      write(path, "old contents\n")
      assert(client:download_batch_production(DOC_BATCH, path))
      assert.matches("^ProductId,DeviceName,DeviceSecret\n", read(path))
    end)

    it("asks for a fresh link when the first one has expired", function()
      emu:set({ download_ttl = -60 })
      -- The first answer carries an expired link; after it, links are good again.
      local fixed = false
      local c = new({ logger = function(r)
        if r.action == "DescribeBatchProduction" and not fixed then
          fixed = true
          emu:set({ download_ttl = 900 })
        end
      end })
      local out, err = c:download_batch_production(DOC_BATCH, path)
      c:close()
      assert.is_nil(err)
      assert.are.equal(1, out.refreshes)
      assert.matches("^ProductId,DeviceName,DeviceSecret\n", read(path))
      local counters = emu:counters()
      assert.are.equal(2, counters.downloads)
      assert.are.equal(2, counters.by_action.DescribeBatchProduction)
    end)

    it("gives up after max_refreshes expired links, leaving no file", function()
      emu:set({ download_ttl = -60 })
      write(path, "old contents\n")
      local res, err = client:download_batch_production(DOC_BATCH, path)
      assert.is_nil(res)
      assert.are.equal("ClientError.HttpStatusCodeError", err.code)
      assert.are.equal(403, err.http_status)
      assert.are.equal("download", err.stage)
      assert.are.equal(3, err.attempts)
      assert.is_false(err.retryable)
      assert.are.equal(3, emu:counters().downloads)
      assert.are.equal("old contents\n", read(path))
      assert.are.same({ "devices.csv" }, files_like(dir, "devices.csv"))

      os.remove(path)
      emu:reset()
      res, err = client:download_batch_production(DOC_BATCH, path, { max_refreshes = 0 })
      assert.is_nil(res)
      assert.are.equal(403, err.http_status)
      assert.are.equal(1, emu:counters().downloads)
      assert.are.same({}, files_like(dir, "devices.csv"))
    end)

    it("retries a transfer cut mid-way, from the start when the store ignores Range", function()
      local params = seed({ BatchCnt = 5000, Status = 3 })
      emu:fault({ kind = "truncate", action = "_download" })
      local out, err = client:download_batch_production(params, path)
      assert.is_nil(err)
      assert.are.equal(2, out.transfers)
      assert.are.equal(expected_csv(params), read(path))
      assert.are.same({ "devices.csv" }, files_like(dir, "devices.csv"))
      assert.are.equal(1, emu:counters().faults_applied)
    end)

    it("gives up after two retries of a cut transfer, removing the partial file", function()
      local params = seed({ BatchCnt = 5000, Status = 3 })
      emu:fault({ kind = "truncate", action = "_download", count = 3 })
      local received = 0
      local res, err = client:download_batch_production(params, path, {
        on_progress = function(r) received = r end,
      })
      assert.is_nil(res)
      assert.are.equal("ClientError.NetworkError", err.code)
      assert.are.equal("download", err.stage)
      assert.are.equal(3, err.transfers)
      assert.is_true(received > 0, "some bytes arrived before the cut")
      assert.are.same({}, files_like(dir, "devices.csv"))
      assert.are.equal(3, emu:counters().faults_applied)
    end)

    it("resumes a cut transfer with Range where the store answers 206", function()
      local files = range_server.start{ size = 100000 }
      local link = { Status = 3, DownloadUrl = files.url .. "/cut-resume", RequestId = "r" }
      local fake = { describe_batch_production = function() return link end }
      local out, err = batch_helpers.download(fake, DOC_BATCH, path)
      local log = files:log()
      files:stop()
      assert.is_nil(err)
      assert.are.equal(2, out.transfers)
      assert.are.equal(files.body, read(path))
      assert.are.same({ { "/cut-resume", "" }, { "/cut-resume", "bytes=50000-" } }, log)
      assert.are.same({ "devices.csv" }, files_like(dir, "devices.csv"))
    end)

    it("caps the size with max_bytes, leaving no file", function()
      local params = seed({ BatchCnt = 5000, Status = 3 })
      local res, err = client:download_batch_production(params, path, { max_bytes = 4096 })
      assert.is_nil(res)
      assert.are.equal("ClientError.ResponseTooLarge", err.code)
      assert.are.equal("download", err.stage)
      assert.are.same({}, files_like(dir, "devices.csv"))
    end)

    it("writes a new file 0600, keeps a stricter mode, and takes opts.mode", function()
      local function mode_of(p) return (util.check_output("stat -c %a " .. util.shell_quote(p)):match("%d+")) end
      assert(client:download_batch_production(DOC_BATCH, path))
      assert.are.equal("600", mode_of(path))
      util.check_output("chmod 400 " .. util.shell_quote(path))
      assert(client:download_batch_production(DOC_BATCH, path))
      assert.are.equal("400", mode_of(path))
      assert(client:download_batch_production(DOC_BATCH, path, { mode = tonumber("640", 8) }))
      assert.are.equal("640", mode_of(path))
    end)

    it("removes the partial file when on_progress cancels or fails", function()
      local params = seed({ BatchCnt = 5000, Status = 3 })
      local _, err = client:download_batch_production(params, path, { on_progress = function() return false end })
      assert.are.equal("ClientError.Cancelled", err.code)
      assert.are.equal("download", err.stage)
      assert.are.same({}, files_like(dir, "devices.csv"))
      _, err = client:download_batch_production(params, path, { on_progress = function() error("disk full?") end })
      assert.are.equal("ClientError.CallbackError", err.code)
      assert.truthy(err.message:find("disk full?", 1, true))
      assert.are.same({}, files_like(dir, "devices.csv"))
    end)

    it("refuses a batch that is not done yet or has failed", function()
      local params = seed({ BatchCnt = 2, Status = 1 })
      local _, err = client:download_batch_production(params, path)
      assert.are.equal("ClientError.BatchNotReady", err.code)
      assert.truthy(err.message:find("Status 1 (processing)", 1, true))
      params = seed({ BatchCnt = 2, fail_reason = "quota exceeded", Status = 1 })
      _, err = client:download_batch_production(params, path)
      assert.are.equal("ClientError.BatchFailed", err.code)
      assert.are.equal("quota exceeded", err.reason)
      assert.are.equal(0, emu:counters().downloads)
      assert.are.same({}, files_like(dir, "devices.csv"))
    end)

    it("returns the service's error for an unknown batch", function()
      local _, err = client:download_batch_production({ ProductId = PRODUCT, BatchProductionId = "LC-missing0" }, path)
      assert.are.equal("ResourceNotFound.BatchProductionNotExist", err.code)
      assert.is_nil(err.stage)
    end)

    it("reports a folder it cannot write to as ClientError.FileError", function()
      local _, err = client:download_batch_production(DOC_BATCH, dir .. "/no/such/folder/devices.csv")
      assert.are.equal("ClientError.FileError", err.code)
      assert.are.equal("download", err.stage)
    end)

    it("checks its arguments before any request, and never raises", function()
      local cases = {
        { DOC_BATCH, nil, nil, "path" }, { DOC_BATCH, "", nil, "path" },
        { DOC_BATCH, path, { on_progress = "yes" }, "on_progress" },
        { DOC_BATCH, path, { max_refreshes = -1 }, "max_refreshes" },
        { DOC_BATCH, path, { timeout = 0 }, "timeout" },
        { DOC_BATCH, path, { refreshes = 1 }, "refreshes" },
        { DOC_BATCH, path, { mode = 1024 }, "mode" }, { DOC_BATCH, path, { max_bytes = 0 }, "max_bytes" },
        { DOC_BATCH, "a\0b", nil, "path" },
      }
      for _, case in ipairs(cases) do
        local res, err = client:download_batch_production(case[1], case[2], case[3])
        assert.is_nil(res)
        assert.are.equal("ClientError.InvalidParameter", err.code)
        assert.are.equal(case[4], err.field)
      end
      local _, err = client.download_batch_production(DOC_BATCH, path)
      assert.are.equal("ClientError.InvalidParameter", err.code)
      assert.are.equal(0, emu:counters().requests)
    end)

    it("returns an error on a closed client", function()
      local c = new()
      c:close()
      local _, err = c:download_batch_production(DOC_BATCH, path)
      assert.are.equal("ClientError.ClientClosed", err.code)
      _, err = c:wait_batch_production(DOC_BATCH)
      assert.are.equal("ClientError.ClientClosed", err.code)
    end)
  end)
end)

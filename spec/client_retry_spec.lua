-- Retries, deadlines and clock-skew repair against the emulator's faults. Every
-- test asserts the attempts the emulator counted.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local leaks = require("helpers.leaks")
local util = require("helpers.util")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local CREATE = { ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0,
  BatchCnt = 2 }

describe("client retries", function()
  local emu, seen, client

  local function new(o)
    o = o or {}
    o.region = "ap-guangzhou"
    o.endpoint = o.endpoint or emu.url
    o.secret_id, o.secret_key = emu.secret_id, emu.secret_key
    o.logger = seen:logger()
    o.backoff_base = o.backoff_base or 0.01
    o.backoff_cap = o.backoff_cap or 0.05
    o.metadata_endpoint = false
    return assert(iot.new(o))
  end

  local function counted(action)
    return emu:counters().by_action[action or "DescribeBatchProduction"] or 0
  end

  local dead_port = util.dead_port   -- a loopback port with nothing listening: connection refused

  setup(function()
    emu = emulator.start()
    seen = leaks.new()
    client = new()
  end)

  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:set{ clock_skew = 0 }
    emu:reset()
  end)

  describe("of reads", function()
    local retryable = {
      { "HTTP 503", { kind = "status", status = 503 }, "InternalError" },
      { "HTTP 502 HTML page", { kind = "html", status = 502 }, "ClientError.HttpStatusCodeError" },
      { "InternalError", { kind = "error", code = "InternalError" }, "InternalError" },
      { "InternalError.DBOpertaionError", { kind = "error", code = "InternalError.DBOpertaionError" },
        "InternalError.DBOpertaionError" },
      { "ServiceUnavailable", { kind = "error", code = "ServiceUnavailable" }, "ServiceUnavailable" },
      { "RequestLimitExceeded", { kind = "error", code = "RequestLimitExceeded" }, "RequestLimitExceeded" },
      { "RequestLimitExceeded.UinLimitExceeded", { kind = "error", code = "RequestLimitExceeded.UinLimitExceeded" },
        "RequestLimitExceeded.UinLimitExceeded" },
      { "connection reset", { kind = "reset", when = "headers" }, "ClientError.NetworkError" },
      { "body cut short", { kind = "truncate" }, "ClientError.NetworkError" },
    }

    for _, case in ipairs(retryable) do
      it("retries " .. case[1] .. " and succeeds", function()
        local f = case[2]
        f.count = 2
        emu:fault(f)
        local res, err = client:describe_batch_production(DESCRIBE)
        seen:see(res, err)
        assert.is_nil(err)
        assert.equal(3, res.BatchCnt)
        assert.equal(3, counted())
      end)

      it("gives up on " .. case[1] .. " after max_attempts", function()
        local f = case[2]
        f.count = -1
        emu:fault(f)
        local res, err = client:describe_batch_production(DESCRIBE)
        seen:see(res, err)
        assert.is_nil(res)
        assert.equal(case[3], err.code)
        assert.equal(3, err.attempts)
        assert.is_true(err.retryable)
        assert.equal(3, counted())
      end)
    end

    it("retries a timeout", function()
      emu:fault{ kind = "delay", seconds = 1, count = 1 }
      local started = core.now()
      local res, err = client:describe_batch_production(DESCRIBE, { timeout = 0.3 })
      seen:see(res, err)
      assert.is_nil(err)
      assert.equal(2, counted())
      assert.is_true(core.now() - started < 0.9)
    end)

    it("honours max_attempts", function()
      local c = new{ max_attempts = 5 }
      emu:fault{ kind = "status", status = 500, count = -1 }
      local _, err = c:describe_batch_production(DESCRIBE)
      assert.equal(5, err.attempts)
      assert.equal(5, counted())
      c:close()
      c = new{ max_attempts = 1 }
      emu:reset()
      emu:fault{ kind = "status", status = 500, count = -1 }
      _, err = c:describe_batch_production(DESCRIBE)
      assert.equal(1, err.attempts)
      assert.equal(1, counted())
      c:close()
    end)

    local final = {
      { "ResourceNotFound", nil, "ResourceNotFound.BatchProductionNotExist",
        { ProductId = "R32ONVL0EU", BatchProductionId = "LC-missing" } },
      { "AuthFailure.SignatureFailure", { kind = "error", code = "AuthFailure.SignatureFailure" },
        "AuthFailure.SignatureFailure" },
      { "InvalidParameter", { kind = "error", code = "InvalidParameter" }, "InvalidParameter" },
      { "malformed JSON", { kind = "malformed_json" }, "ClientError.ParseJsonError" },
      { "an HTML page with status 200", { kind = "html", status = 200 }, "ClientError.ParseJsonError" },
      { "HTTP 404 without an envelope", { kind = "html", status = 404 }, "ClientError.HttpStatusCodeError" },
      { "a response over the size cap", { kind = "big", bytes = 5000 }, "ClientError.ResponseTooLarge" },
    }
    for _, case in ipairs(final) do
      it("does not retry " .. case[1], function()
        if case[2] then
          case[2].count = -1
          emu:fault(case[2])
        end
        local c = new{ max_response_bytes = 4096 }
        local res, err = c:describe_batch_production(case[4] or DESCRIBE)
        seen:see(res, err)
        assert.is_nil(res)
        assert.equal(case[3], err.code)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.equal(1, counted())
        c:close()
      end)
    end

    it("retries a refused connection (never sent)", function()
      local c = new{ endpoint = "http://127.0.0.1:" .. dead_port() }
      local before = #seen.records
      local _, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.equal("ClientError.NetworkError", err.code)
      assert.is_false(err.sent)
      assert.equal(3, err.attempts)
      assert.equal(3, #seen.records - before)
      c:close()
    end)
  end)

  describe("of writes", function()
    it("retries RequestLimitExceeded (the server did not process it)", function()
      emu:fault{ kind = "error", code = "RequestLimitExceeded", count = 2, action = "CreateBatchProduction" }
      local res, err = client:create_batch_production(CREATE)
      seen:see(res, err)
      assert.is_nil(err)
      assert.matches("^LC%-", res.BatchProductionId)
      assert.equal(3, counted("CreateBatchProduction"))
    end)

    for _, case in ipairs({
      { "HTTP 503", { kind = "status", status = 503 }, "InternalError" },
      { "InternalError", { kind = "error", code = "InternalError" }, "InternalError" },
      { "a reset after sending", { kind = "reset", when = "headers" }, "ClientError.NetworkError" },
      { "a truncated body", { kind = "truncate" }, "ClientError.NetworkError" },
    }) do
      it("does not retry " .. case[1] .. ": it may have been applied", function()
        local f = case[2]
        f.count, f.action = 1, "CreateBatchProduction"
        emu:fault(f)
        local res, err = client:create_batch_production(CREATE)
        seen:see(res, err)
        assert.is_nil(res)
        assert.equal(case[3], err.code)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.equal(1, counted("CreateBatchProduction"))
      end)
    end

    it("does not retry a timeout after sending", function()
      emu:fault{ kind = "delay", seconds = 1, count = 1, action = "CreateBatchProduction" }
      local _, err = client:create_batch_production(CREATE, { timeout = 0.2 })
      seen:see(err)
      assert.equal("ClientError.Timeout", err.code)
      assert.equal(1, err.attempts)
      assert.equal(1, counted("CreateBatchProduction"))
    end)

    it("retries a refused connection (never sent)", function()
      local c = new{ endpoint = "http://127.0.0.1:" .. dead_port() }
      local _, err = c:create_batch_production(CREATE)
      seen:see(err)
      assert.equal("ClientError.NetworkError", err.code)
      assert.equal(3, err.attempts)
      assert.is_true(err.retryable)
      c:close()
    end)

    it("treats any non-read action given to call() as a write", function()
      emu:fault{ kind = "status", status = 503, count = -1 }
      local _, err = client:call("ModifyProduct", { ProductId = "R32ONVL0EU" })
      seen:see(err)
      assert.equal(1, err.attempts)
      assert.equal(1, emu:counters().requests)
      emu:reset()
      emu:fault{ kind = "status", status = 503, count = -1 }
      _, err = client:call("DescribeBatchProduction", DESCRIBE)
      assert.equal(3, err.attempts)
      assert.equal(3, counted())
    end)
  end)

  describe("deadline", function()
    it("bounds a slow attempt", function()
      emu:fault{ kind = "delay", seconds = 2, count = -1 }
      local started = core.now()
      local _, err = client:describe_batch_production(DESCRIBE, { deadline = 0.4 })
      local elapsed = core.now() - started
      seen:see(err)
      assert.equal("ClientError.Timeout", err.code)
      assert.is_true(elapsed >= 0.35 and elapsed < 0.6, "elapsed " .. elapsed)
      assert.equal(1, counted())
    end)

    it("bounds retries and their sleeps", function()
      local c = new{ max_attempts = 100, backoff_base = 0.05, backoff_cap = 0.1 }
      emu:fault{ kind = "status", status = 503, count = -1 }
      local started = core.now()
      local _, err = c:describe_batch_production(DESCRIBE, { deadline = 0.5 })
      local elapsed = core.now() - started
      seen:see(err)
      assert.equal("ClientError.Timeout", err.code)
      assert.is_true(err.deadline)
      assert.equal("InternalError", err.cause.code)
      assert.matches("last error: InternalError", err.message)
      assert.is_true(elapsed <= 0.55, "elapsed " .. elapsed)
      assert.is_true(err.attempts > 2)
      assert.equal(err.attempts, counted())
      c:close()
    end)

    it("counts time waiting for the rate limiter, which the per-attempt timeout does not", function()
      local c = new{ rate_limit = 1, timeout = 0.5 }
      assert(c:describe_batch_production(DESCRIBE))
      -- the next slot is ~1.04 s away: more than the timeout, yet the call succeeds
      local started = core.now()
      local res, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.is_nil(err)
      assert.is_table(res)
      assert.is_true(core.now() - started > 0.9)
      -- a deadline shorter than the wait fails at once without sending
      started = core.now()
      res, err = c:describe_batch_production(DESCRIBE, { deadline = 0.3 })
      assert.is_nil(res)
      assert.equal("ClientError.Timeout", err.code)
      assert.is_false(err.sent)
      assert.is_true(core.now() - started < 0.1)
      assert.equal(2, counted())
      c:close()
    end)
  end)

  describe("clock skew", function()
    it("repairs a clock that is behind the server's, once, and keeps the offset", function()
      local c = new()
      emu:set{ clock_skew = 1000 }
      local res, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.is_nil(err)
      assert.is_table(res)
      assert.equal(2, counted())
      assert.equal(1, emu:counters().errors["AuthFailure.SignatureExpire"])
      assert.is_true(math.abs(c.clock_offset - 1000) <= 2, "offset " .. c.clock_offset)
      -- later calls sign with the repaired time straight away
      assert(c:describe_batch_production(DESCRIBE))
      assert(c:create_batch_production(CREATE))
      assert.equal(4, emu:counters().requests)
      c:close()
    end)

    it("repairs a clock that is ahead, for writes too (the server refused before doing anything)", function()
      local c = new()
      emu:set{ clock_skew = -3600 }
      local res, err = c:create_batch_production(CREATE)
      seen:see(err)
      assert.is_nil(err)
      assert.is_table(res)
      assert.equal(2, counted("CreateBatchProduction"))
      assert.is_true(math.abs(c.clock_offset + 3600) <= 2)
      c:close()
    end)

    it("does not loop when the repaired time is refused too", function()
      emu:fault{ kind = "error", code = "AuthFailure.SignatureExpire", count = -1 }
      local c = new()
      local _, err = c:describe_batch_production(DESCRIBE)
      seen:see(err)
      assert.equal("AuthFailure.SignatureExpire", err.code)
      assert.equal(2, err.attempts)
      assert.equal(2, counted())
      c:close()
    end)
  end)

  it("never showed a secret in any error or logger record", function()
    assert.is_true(#seen.records > 50)
    assert.is_nil(seen:find({ emu.secret_key, emu.tmp_secret_key, emu.tmp_token }))
  end)
end)

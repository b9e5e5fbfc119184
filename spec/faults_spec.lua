-- Faults, at the client level against the emulator: for each way the network or the server can
-- misbehave, the call returns the right result after retries (the attempts the emulator counted are
-- asserted) or an error object with the code from the core's error table, within its deadline. The whole
-- matrix then runs a second time in the same process, and the Lua heap, the resident set and the open file
-- descriptors must not grow between the end of the first pass and the end of the second. The credentials
-- are recognisable ones (helpers/secrets.lua) and nothing any call returns or logs may contain them.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local secrets = require("helpers.secrets")
local socket = require("socket")
local util = require("helpers.util")

local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local CREATE = { ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0,
  BatchCnt = 1 }
local DEADLINE = 3        -- seconds, every call of the matrix (per-call `deadline`)
local TIMEOUT = 0.25      -- seconds per attempt where a case needs a timeout to fire

local NETWORK, TIMEOUT_CODE = "ClientError.NetworkError", "ClientError.Timeout"
local STATUS, PARSE, TOO_LARGE = "ClientError.HttpStatusCodeError", "ClientError.ParseJsonError",
  "ClientError.ResponseTooLarge"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local dead_port = util.dead_port   -- a loopback port with nothing listening: connection refused

local BAD_UTF8 = "caf\xc3 \xff\xfe \xed\xa0\x80 \xc0\xaf ok"   -- truncated, invalid, surrogate, overlong

-- Each case: name, fault(s) to queue, what to call, and what must come back.
--   ok = function(res) ... end       success expected (after `attempts` requests)
--   code, http_status, retryable     error expected
--   attempts                         requests the emulator counted (and err.attempts on failure)
--   client                           options for a dedicated client (else the shared one)
--   opts                             per-call options (deadline defaults to DEADLINE)
--   within                           seconds the call must take at most (default: its deadline)
local CASES = {
  { "HTTP 500 with an error envelope, once: retried, then the result",
    fault = { kind = "status", status = 500, count = 1 }, attempts = 2, ok = true },
  { "HTTP 500 without an envelope, every time: HttpStatusCodeError after 3 attempts",
    fault = { kind = "status", status = 500, count = 0, content_type = "text/plain", body = "Internal Server Error" },
    attempts = 3, code = STATUS, http_status = 500, retryable = true },
  { "HTTP 502 with an error envelope, twice: retried, then the result",
    fault = { kind = "status", status = 502, count = 2 }, attempts = 3, ok = true },
  { "HTTP 502 with an error envelope, every time: its InternalError after 3 attempts",
    fault = { kind = "status", status = 502, count = 0 }, attempts = 3, code = "InternalError", http_status = 502,
    retryable = true },
  { "HTTP 503 without an envelope, once: retried, then the result",
    fault = { kind = "status", status = 503, count = 1, content_type = "text/plain", body = "Service Unavailable" },
    attempts = 2, ok = true },
  { "HTTP 503 without an envelope, every time: HttpStatusCodeError after 3 attempts",
    fault = { kind = "status", status = 503, count = 0, content_type = "text/plain", body = "" },
    attempts = 3, code = STATUS, http_status = 503, retryable = true },
  { "connection refused: NetworkError, never sent, 3 attempts",
    client = function() return { endpoint = "http://127.0.0.1:" .. dead_port() } end,
    attempts = 0, err_attempts = 3, code = NETWORK, sent = false, retryable = true },
  { "connection reset mid-response, once: retried, then the result",
    fault = { kind = "reset", when = "headers", count = 1 }, attempts = 2, ok = true },
  { "connection reset mid-response, every time: NetworkError after 3 attempts",
    fault = { kind = "reset", when = "headers", count = 0 }, attempts = 3, code = NETWORK, sent = true,
    retryable = true },
  { "connection reset before any answer, every time: NetworkError",
    -- libcurl resends by itself once when a reused connection dies before answering, so the emulator may
    -- count more requests than the client made attempts: only the client's count is exact here.
    fault = { kind = "reset", when = "before", count = 0 }, err_attempts = 3, code = NETWORK, retryable = true },
  { "a body cut short, once: retried, then the result",
    fault = { kind = "truncate", count = 1 }, attempts = 2, ok = true },
  { "a body cut short, every time: NetworkError after 3 attempts",
    fault = { kind = "truncate", count = 0 }, attempts = 3, code = NETWORK, retryable = true },
  { "an answer slower than the timeout, once: retried, then the result",
    fault = { kind = "delay", seconds = 1, count = 1 }, opts = { timeout = TIMEOUT }, attempts = 2, ok = true,
    within = 0.9 },
  { "an answer slower than the timeout, every time: Timeout after 3 attempts",
    fault = { kind = "delay", seconds = 1, count = 0 }, opts = { timeout = TIMEOUT }, attempts = 3,
    code = TIMEOUT_CODE, retryable = true, within = 1.5 },
  { "an answer slower than the deadline: Timeout at the deadline",
    fault = { kind = "delay", seconds = 2, count = 0 }, opts = { deadline = 0.5 }, attempts = 1,
    code = TIMEOUT_CODE, within = 0.9 },
  { "malformed JSON: ParseJsonError, not retried",
    fault = { kind = "malformed_json" }, attempts = 1, code = PARSE, http_status = 200, retryable = false },
  { "a JSON array: ParseJsonError",
    fault = { kind = "raw", status = 200, headers = { ["Content-Type"] = "application/json" }, body = "[1,2,3]" },
    attempts = 1, code = PARSE, http_status = 200, retryable = false },
  { "a JSON string: ParseJsonError",
    fault = { kind = "raw", status = 200, body = '"Response"' }, attempts = 1, code = PARSE },
  { "JSON without Response: ParseJsonError",
    fault = { kind = "raw", status = 200, body = '{"Other":{"RequestId":"r"}}' }, attempts = 1, code = PARSE },
  { "Response that is not an object: ParseJsonError",
    fault = { kind = "raw", status = 200, body = '{"Response":"ok"}' }, attempts = 1, code = PARSE },
  { "an Error without Code: ParseJsonError",
    fault = { kind = "raw", status = 200, body = '{"Response":{"Error":{"Message":"x"},"RequestId":"r"}}' },
    attempts = 1, code = PARSE },
  { "an Error whose Code is not a string: ParseJsonError",
    fault = { kind = "raw", status = 200, body = '{"Response":{"Error":{"Code":42},"RequestId":"r"}}' },
    attempts = 1, code = PARSE },
  { "an HTML page with status 200: ParseJsonError, not retried",
    fault = { kind = "html", status = 200 }, attempts = 1, code = PARSE, http_status = 200, retryable = false },
  { "an HTML page with status 502, every time: HttpStatusCodeError after 3 attempts",
    fault = { kind = "html", status = 502, count = 0 }, attempts = 3, code = STATUS, http_status = 502,
    retryable = true },
  { "an HTML page with status 502, once: retried, then the result",
    fault = { kind = "html", status = 502, count = 1 }, attempts = 2, ok = true },
  { "a body larger than the cap: ResponseTooLarge, not retried",
    client = function() return { max_response_bytes = 4096 } end,
    fault = { kind = "big", bytes = 64 * 1024 }, attempts = 1, code = TOO_LARGE, retryable = false },
  { "a body just under the cap: the result, padding and all",
    client = function() return { max_response_bytes = 4096 } end,
    fault = { kind = "big", bytes = 4096 }, attempts = 1,
    ok = function(res) return type(res.Padding) == "string" and #res.Padding > 3900 end },
  { "a body of 100 KB, under the default cap of 10 MB: the result",
    fault = { kind = "big", bytes = 100 * 1024 }, attempts = 1,
    ok = function(res) return #res.Padding > 100000 end },
  { "an empty body with status 200: ParseJsonError",
    fault = { kind = "raw", status = 200, body = "" }, attempts = 1, code = PARSE, http_status = 200 },
  { "an empty body with status 204: HttpStatusCodeError",
    fault = { kind = "raw", status = 204 }, attempts = 1, code = STATUS, http_status = 204 },
  { "a 302 redirect: HttpStatusCodeError, not followed, not retried",
    fault = { kind = "raw", status = 302, headers = { Location = "http://127.0.0.1:1/" }, body = "" },
    attempts = 1, code = STATUS, http_status = 302, retryable = false },
  { "a 307 redirect to the same server: not followed",
    fault = { kind = "raw", status = 307, headers = { Location = "/" }, body = "moved" },
    attempts = 1, code = STATUS, http_status = 307 },
  { "invalid UTF-8 in strings: passed through as bytes",
    fault = { kind = "raw", status = 200, headers = { ["Content-Type"] = "application/json" },
      body_hex = hex('{"Response":{"BatchCnt":3,"LastFailedReason":"' .. BAD_UTF8 .. '","RequestId":"r-\xff"}}') },
    attempts = 1, ok = function(res) return res.LastFailedReason == BAD_UTF8 and res.RequestId == "r-\xff" end },
  { "invalid UTF-8 in an API error's message: the error, bytes kept",
    fault = { kind = "raw", status = 200, body_hex = hex(
      '{"Response":{"Error":{"Code":"InvalidParameter","Message":"' .. BAD_UTF8 .. '"},"RequestId":"r"}}') },
    attempts = 1, code = "InvalidParameter", message = BAD_UTF8, retryable = false },
  { "an API error in a 500 envelope: the API's code, retried as InternalError",
    fault = { kind = "error", code = "InternalError", status = 500, count = 0 }, attempts = 3,
    code = "InternalError", http_status = 500, retryable = true },
  { "RequestLimitExceeded, once: retried, then the result",
    fault = { kind = "error", code = "RequestLimitExceeded", count = 1 }, attempts = 2, ok = true },
  -- A write is retried only when the server certainly did not process it.
  { "CreateBatchProduction and HTTP 503: not retried",
    call = "create", fault = { kind = "status", status = 503, count = 0 }, attempts = 1, code = "InternalError",
    retryable = false },
  { "CreateBatchProduction and a reset mid-response: not retried",
    call = "create", fault = { kind = "reset", when = "headers", count = 0 }, attempts = 1, code = NETWORK },
  { "CreateBatchProduction and connection refused: retried (never sent)",
    call = "create", client = function() return { endpoint = "http://127.0.0.1:" .. dead_port() } end,
    attempts = 0, err_attempts = 3, code = NETWORK, sent = false, retryable = true },
}

-- ---------------------------------------------------------------------------------------------------

describe("faults, at the client level", function()
  local emu, watch, shared

  local function new(extra)
    local o = secrets.credentials{
      region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false, rate_limit = false,
      timeout = 2, connect_timeout = 1, max_attempts = 3, backoff_base = 0.01, backoff_cap = 0.02,
      logger = watch:logger(function() watch.records = (watch.records or 0) + 1 end),
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c, err = iot.new(o)
    watch:see(c, err)
    return assert(c, tostring(err))
  end

  -- Runs one case; returns nil when it behaved, else a description of what went wrong.
  local function run_case(case)
    emu:reset()
    if case.fault then emu:fault(case.fault) end
    local client = case.client and new(case.client()) or shared
    local opts = { deadline = DEADLINE }
    for k, v in pairs(case.opts or {}) do opts[k] = v end
    local records_before = watch.records or 0
    local started = core.now()
    local ok, res, err
    if case.call == "create" then
      ok, res, err = pcall(client.create_batch_production, client, CREATE, opts)
    else
      ok, res, err = pcall(client.describe_batch_production, client, DESCRIBE, opts)
    end
    local elapsed = core.now() - started
    watch:see(res, err)
    local logged = (watch.records or 0) - records_before
    if client ~= shared then client:close() end
    local counted = emu:counters().requests

    local problems = {}
    local function check(cond, fmt, ...)
      if not cond then problems[#problems + 1] = string.format(fmt, ...) end
    end
    if not ok then return "raised: " .. tostring(res) end
    check(elapsed <= (case.within or opts.deadline) + 0.25, "took %.2fs, more than %.2fs", elapsed,
      case.within or opts.deadline)
    if case.attempts then check(counted == case.attempts, "the emulator counted %d requests, not %d", counted,
      case.attempts) end
    if case.ok then
      check(res ~= nil and err == nil, "expected a result, got %s", tostring(err))
      if res then
        check(type(res) == "table" and type(res.RequestId) == "string", "result without RequestId")
        if type(case.ok) == "function" then check(case.ok(res), "the result is not the expected one") end
        check(case.ok ~= true or res.BatchCnt == 3, "BatchCnt is %s", tostring(res.BatchCnt))
      end
      if case.attempts then check(logged == case.attempts, "%d logger records for %d attempts", logged,
        case.attempts) end
    else
      check(res == nil, "expected an error, got a result")
      check(iot.is_error(err), "not an error object: %s", tostring(err))
      if iot.is_error(err) then
        check(err.code == case.code, "code %s, not %s (%s)", tostring(err.code), case.code, tostring(err))
        check(type(err.message) == "string" and err.message ~= "", "no message")
        check(type(tostring(err)) == "string" and tostring(err):find(case.code, 1, true) == 1,
          "tostring does not start with the code")
        local want_attempts = case.err_attempts or case.attempts
        check(err.attempts == want_attempts, "err.attempts %s, not %s", tostring(err.attempts), want_attempts)
        check(logged == err.attempts, "%d logger records for %s attempts", logged, tostring(err.attempts))
        if case.http_status then check(err.http_status == case.http_status, "http_status %s, not %d",
          tostring(err.http_status), case.http_status) end
        if case.retryable ~= nil then check(err.retryable == case.retryable, "retryable %s",
          tostring(err.retryable)) end
        if case.sent ~= nil then check(err.sent == case.sent, "sent %s", tostring(err.sent)) end
        if case.message then check(err.message == case.message, "message changed: %q", err.message) end
      end
    end
    if #problems > 0 then return table.concat(problems, "; ") end
  end

  local function run_matrix()
    local failures = {}
    for _, case in ipairs(CASES) do
      local problem = run_case(case)
      if problem then failures[#failures + 1] = case[1] .. ": " .. problem end
    end
    return failures
  end

  local function rss_kb()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
  end

  -- Our own pid (not the pid of a shell we start): the first field of /proc/self/stat, read by us.
  local function own_pid()
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("*l"):match("^(%d+)")
    f:close()
    return pid
  end

  local function fds()
    local n = 0
    local p = assert(io.popen("ls /proc/" .. own_pid() .. "/fd"))
    for _ in p:lines() do n = n + 1 end
    p:close()
    return n - 1   -- minus the pipe this listing is read through
  end

  local function measure()
    -- LuaJIT compiles more traces as the loops get hot: drop them, so only what the calls keep is measured.
    if type(jit) == "table" and jit.flush then jit.flush() end
    collectgarbage("collect")
    collectgarbage("collect")
    return { lua_kb = collectgarbage("count"), rss_kb = rss_kb(), fds = fds() }
  end

  setup(function()
    emu = emulator.start{ fixture = secrets.fixture() }
    watch = secrets.watch()
    shared = new()
  end)

  teardown(function()
    if shared then shared:close() end
    if emu then emu:stop() end
  end)

  -- The first pass, one test per case so that a failure names its case.
  describe("first pass", function()
    for _, case in ipairs(CASES) do
      it(case[1], function()
        local problem = run_case(case)
        assert(problem == nil, problem)
      end)
    end
  end)

  local after_first
  it("second pass: every case again, and memory and file descriptors do not grow", function()
    after_first = measure()
    local failures = run_matrix()
    local after_second = measure()
    -- A connection the server closed a moment ago may still be open on our side: give it a moment.
    for _ = 1, 10 do
      if after_second.fds <= after_first.fds then break end
      socket.sleep(0.1)
      after_second = measure()
    end
    assert(#failures == 0, "second pass:\n  " .. table.concat(failures, "\n  "))
    local grown = {
      lua_kb = after_second.lua_kb - after_first.lua_kb,
      rss_kb = after_second.rss_kb - after_first.rss_kb,
      fds = after_second.fds - after_first.fds,
    }
    local report = string.format("Lua heap %+.1f KB (%.0f -> %.0f), VmRSS %+d KB, fds %+d (%d -> %d)",
      grown.lua_kb, after_first.lua_kb, after_second.lua_kb, grown.rss_kb, grown.fds, after_first.fds,
      after_second.fds)
    if os.getenv("TCIOT_SPEC_REPORT") then io.stderr:write("\n" .. report .. "\n") end
    assert(grown.lua_kb < 64, "the Lua heap grew: " .. report)
    -- Under AddressSanitizer (make test-asan) freed memory sits in a quarantine: the resident set grows by
    -- design there, and LeakSanitizer does the accounting instead.
    local asan = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true)
    assert(asan or grown.rss_kb < 1024, "the resident set grew: " .. report)
    assert(grown.fds <= 0, "file descriptors leaked: " .. report)
  end)

  it("no secret key or token in any error, tostring, client or logger record of either pass", function()
    watch:see(shared)
    assert(watch:assert_clean() > 0)
  end)
end)

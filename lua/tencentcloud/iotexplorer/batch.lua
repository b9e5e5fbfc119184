-- Waiting for a batch production and downloading its device file. Attached to the
-- client by init.lua as client:wait_batch_production and client:download_batch_production.
--
--   local res, err = client:wait_batch_production(params, { deadline = 600, on_progress = fn })
--   local out, err = client:download_batch_production(params, "devices.csv", { on_progress = fn })
--
-- Like every client method, nothing here raises on bad input: failures come back
-- as nil, err with err an error object (see errors.lua).

local core = require("tencentcloud.iotexplorer.core")
local errors = require("tencentcloud.iotexplorer.errors")

local batch = {}


batch.DEFAULT_DEADLINE = 600      -- seconds wait_batch_production keeps polling
batch.DEFAULT_INTERVAL = 1        -- first pause between two polls
batch.DEFAULT_MAX_INTERVAL = 10   -- the pause grows by half each time, up to this
batch.DEFAULT_REFRESHES = 2       -- fresh links asked for after a 403 (expired link)
batch.DEFAULT_DOWNLOAD_TIMEOUT = 300

-- What each Status means (DescribeBatchProduction).
batch.STATUS = { [0] = "created", [1] = "processing", [2] = "uploading results", [3] = "done" }

local invalid = errors.invalid

local function is_client(c)
  return type(c) == "table" and type(c.describe_batch_production) == "function"
end

local function check_options(opts, known)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    return nil, invalid("opts", "options must be a table")
  end
  for k, v in next, opts do
    local kind = known[k]
    if not kind then
      return nil, invalid(tostring(k), "unknown option '" .. tostring(k) .. "'")
    end
    if kind == "function" and type(v) ~= "function" then
      return nil, invalid(k, k .. " must be a function")
    end
    if kind == "seconds" and (type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge) then
      return nil, invalid(k, k .. " must be a positive number of seconds")
    end
    if kind == "count" and (type(v) ~= "number" or v < 0 or v ~= math.floor(v) or v == math.huge) then
      return nil, invalid(k, k .. " must be an integer >= 0")
    end
    -- "mode" and "bytes" are checked by their own function.
  end
  return opts
end

local function fail(err, attempts)
  err.attempts = err.attempts or attempts or 0
  return nil, err
end

-- "Status 1 (processing), 2/5 devices"
function batch.describe_status(res)
  local status = res.Status
  local s = "Status " .. tostring(status)
  if batch.STATUS[status] then
    s = s .. " (" .. batch.STATUS[status] .. ")"
  end
  if res.SuccessCount ~= nil and res.BatchCnt ~= nil then
    s = s .. string.format(", %s/%s devices", tostring(res.SuccessCount), tostring(res.BatchCnt))
  end
  return s
end

local function failed_reason(res)
  local reason = res.LastFailedReason
  if type(reason) == "string" and reason ~= "" then
    return reason
  end
end

local function batch_failed(params, res, polls)
  local reason = failed_reason(res)
  return errors.new(errors.BATCH_FAILED,
    string.format("batch %s failed: %s", tostring(params.BatchProductionId), reason), {
      reason = reason, response = res, request_id = res.RequestId, attempts = polls,
    })
end

-- Runs a caller's progress function: false cancels, an error is returned, not raised.
local function report(fn, ...)
  if not fn then
    return nil
  end
  local ok, result = pcall(fn, ...)
  if not ok then
    return errors.new(errors.CALLBACK_ERROR, "the progress function failed: " .. tostring(result))
  end
  if result == false then
    return errors.new(errors.CANCELLED, "the progress function cancelled the wait")
  end
end

local WAIT_OPTIONS = {
  deadline = "seconds", interval = "seconds", max_interval = "seconds", on_progress = "function",
  on_retry = "function", on_tick = "function",
}

-- The longest a pause runs without calling on_tick (and looking for an interrupt).
batch.TICK = 1

local function interrupted()
  local sig = core.interrupted and core.interrupted()
  if sig then
    return errors.new(errors.INTERRUPTED, "interrupted by signal " .. tostring(sig), { signal = sig })
  end
end

-- Why the wait ran out of time, in words: the batch is not done yet (its last Status), or the service has
-- not been answering (the last error). err.waiting_for is "batch" or "service" accordingly.
local function deadline_error(params, deadline, polls, last, last_err)
  local id = tostring(params and params.BatchProductionId)
  local msg, waiting_for
  if last_err then
    waiting_for = "service"
    msg = string.format("the service did not answer for batch %s within the deadline of %gs; last error: %s",
      id, deadline, tostring(last_err))
    if last then
      msg = msg .. " (last seen: " .. batch.describe_status(last) .. ")"
    end
  else
    waiting_for = "batch"
    msg = string.format("batch %s was not done within the deadline of %gs", id, deadline)
    if last then
      msg = msg .. " (last seen: " .. batch.describe_status(last) .. ")"
    end
  end
  return errors.new(errors.TIMEOUT, msg, {
    deadline = true, waiting_for = waiting_for, response = last, cause = last_err, attempts = polls,
  })
end

-- Polls DescribeBatchProduction until Status 3 (returns that response), a non-empty
-- LastFailedReason (ClientError.BatchFailed) or the deadline (ClientError.Timeout).
-- opts: deadline (600 s), interval (1 s, the first pause), max_interval (10 s),
-- on_progress(res, elapsed) after every answer; on_retry(err, elapsed) after a poll that failed
-- and will be tried again; on_tick(elapsed) at least every batch.TICK seconds while pausing.
-- Each may return false to stop (ClientError.Cancelled).
-- Errors the client could not retry away end the wait; retryable ones (the network
-- went away for longer than the client's own retries) only make it poll again later.
-- When the core traps signals, an interrupt ends the pause within batch.TICK (ClientError.Interrupted).
function batch.wait(client, params, opts)
  if not is_client(client) then
    return fail(invalid("self", "call methods with a colon: client:wait_batch_production(...)"))
  end
  local o, err = check_options(opts, WAIT_OPTIONS)
  if not o then
    return fail(err)
  end
  local deadline = o.deadline or batch.DEFAULT_DEADLINE
  local pause = o.interval or batch.DEFAULT_INTERVAL
  local max_pause = math.max(o.max_interval or batch.DEFAULT_MAX_INTERVAL, pause)
  local now, sleep = client.now or core.now, client.sleep or core.sleep
  local started = now()
  local polls, last, last_err = 0, nil, nil

  while true do
    local remaining = deadline - (now() - started)
    if remaining <= 0 then
      return nil, deadline_error(params, deadline, polls, last, last_err)
    end

    local res
    res, err = client:describe_batch_production(params, { deadline = remaining })
    polls = polls + 1
    if res then
      last, last_err = res, nil
      err = report(o.on_progress, res, now() - started)
      if err then
        return fail(err, polls)
      end
      if failed_reason(res) then
        return nil, batch_failed(params, res, polls)
      end
      if res.Status == 3 then
        return res
      end
    elseif err.code == errors.INTERRUPTED then
      return fail(err, polls)
    elseif err.retryable and not err.deadline then
      last_err = err
      err = report(o.on_retry, err, now() - started)
      if err then
        return fail(err, polls)
      end
    elseif err.deadline then
      -- The call ran into the wait's own deadline: the service was still being waited for.
      last_err = err.cause or last_err or err
    else
      return fail(err, polls)
    end

    -- The pause, in slices of at most batch.TICK so that progress can tick and an interrupt is seen.
    local pause_ends = math.min(now() + pause, started + deadline)
    while true do
      err = interrupted()
      if err then
        return fail(err, polls)
      end
      local left = pause_ends - now()
      if left <= 0 then
        break
      end
      sleep(math.min(left, batch.TICK))
      err = interrupted() or report(o.on_tick, now() - started)
      if err then
        return fail(err, polls)
      end
    end
    pause = math.min(pause * 1.5, max_pause)
  end
end

batch.DEFAULT_MAX_BYTES = 256 * 1024 * 1024   -- the device file's size cap
batch.RESUMES = 2                 -- a transfer cut short is continued (or restarted) at most this often

local DOWNLOAD_OPTIONS = {
  on_progress = "function", timeout = "seconds", connect_timeout = "seconds", max_refreshes = "count",
  mode = "mode", max_bytes = "bytes",
}

local function check_download_options(opts)
  local o, err = check_options(opts, DOWNLOAD_OPTIONS)
  if not o then
    return nil, err
  end
  local mode, max_bytes = o.mode, o.max_bytes
  if mode ~= nil and (type(mode) ~= "number" or mode ~= math.floor(mode) or mode < 0 or mode > 511) then
    return nil, invalid("mode", "mode must be a file mode from 0 to 0777 (e.g. tonumber(\"640\", 8))")
  end
  if max_bytes ~= nil and (type(max_bytes) ~= "number" or max_bytes ~= math.floor(max_bytes) or max_bytes < 1
      or max_bytes > 2 ^ 50) then
    return nil, invalid("max_bytes", "max_bytes must be a whole number of bytes, at least 1")
  end
  return o
end

-- One link: the transfer, continued after a cut up to batch.RESUMES times. The core resumes with a Range
-- request (the store answers 206) or starts over (200); the session keeps the partial file in between, and
-- the last attempt asks it to keep nothing. Returns the core's result, or nil, err and the attempts made.
local function fetch(download, req)
  local attempts = 0
  while true do
    attempts = attempts + 1
    req.keep_partial = attempts <= batch.RESUMES
    local out, err = download(req)
    if out or attempts > batch.RESUMES or not (err.partial_bytes or (err.code == errors.NETWORK_ERROR
        and err.sent)) then
      return out, err, attempts
    end
    req.resume = err.partial_bytes ~= nil
  end
end

-- Fetches the CSV behind DownloadUrl into `path` ("-": standard output). Only a complete file reaches
-- path: the core writes a private temporary (mode 0600, a random name next to path; for "-" no name at
-- all) and renames it into place, so `path` is either the whole file or untouched. The file gets mode 0600,
-- an existing target's mode when stricter, or opts.mode. A transfer cut short is continued (Range) or
-- restarted, at most batch.RESUMES (2) times; an expired link (HTTP 403) is replaced by a fresh one from
-- DescribeBatchProduction, at most max_refreshes (2) times.
-- opts: on_progress(received, total) (return false to cancel), timeout (300 s for each transfer),
-- connect_timeout, max_refreshes, mode, max_bytes (256 MiB).
-- Returns { path, bytes, response (the last DescribeBatchProduction answer), refreshes, transfers (of the
-- last link, resumptions included) }.
-- Errors of the transfer itself carry stage = "download".
local download_links

function batch.download(client, params, path, opts, download)
  if not is_client(client) then
    return fail(invalid("self", "call methods with a colon: client:download_batch_production(...)"))
  end
  if type(path) ~= "string" or path == "" or path:find("%z") then
    return fail(invalid("path", "path must be a file name, or \"-\" for standard output (without NUL bytes)"))
  end
  local o, err = check_download_options(opts)
  if not o then
    return fail(err)
  end
  if download then
    return download_links(client, params, path, o, download)
  end
  -- Without the client's transport (proxy, CA settings, nginx's thread pool): a session of our own, for
  -- every transfer of this download (it keeps a cut transfer's file for the next one to resume).
  local own = core.new_session({ interruptible = true })
  local res
  res, err = download_links(client, params, path, o, function(req) return core.download(own, req) end)
  own:close()
  return res, err
end

-- The links of one download: the first, and fresh ones for expired links.
function download_links(client, params, path, o, download)
  local max_refreshes = o.max_refreshes or batch.DEFAULT_REFRESHES
  local refreshes = 0
  local err
  while true do
    local res
    res, err = client:describe_batch_production(params)
    if not res then
      return nil, err
    end
    if failed_reason(res) then
      return nil, batch_failed(params, res, 1)
    end
    local url = res.DownloadUrl
    if res.Status ~= 3 or type(url) ~= "string" or url == "" then
      return fail(errors.new(errors.BATCH_NOT_READY, string.format(
        "batch %s has no device file yet (%s); wait for Status 3 first",
        tostring(params.BatchProductionId), batch.describe_status(res)), { response = res }))
    end

    local started = core.now()
    local out, derr, attempts = fetch(download, {
      url = url, path = path, mode = o.mode, max_bytes = o.max_bytes or batch.DEFAULT_MAX_BYTES,
      on_progress = o.on_progress, timeout = o.timeout or batch.DEFAULT_DOWNLOAD_TIMEOUT,
      connect_timeout = o.connect_timeout,
    })

    local record = { action = "download", attempt = refreshes + 1, duration = core.now() - started }
    if out then
      record.status, record.bytes, record.http_status = "ok", out.bytes, out.http_status
      if client._log then client:_log(record) end
      return { path = path, bytes = out.bytes, response = res, refreshes = refreshes, transfers = attempts }
    end
    err = errors.from_core(derr)
    err.stage = "download"
    err.retryable = false
    err.attempts = refreshes + 1
    err.transfers = attempts
    record.status, record.code, record.http_status = "error", err.code, err.http_status
    if client._log then client:_log(record) end
    if err.http_status ~= 403 or refreshes >= max_refreshes then
      return nil, err
    end
    refreshes = refreshes + 1
  end
end

return batch

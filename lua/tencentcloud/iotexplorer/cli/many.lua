-- DescribeBatchProduction over several batches: --BatchProductionId given more than once and/or
-- --BatchProductionIds-file FILE|- (one id a line). One client:describe_batch_productions call per poll
-- (client:call_many: several requests in flight, --concurrency), one JSON array in input order, and with
-- --wait one progress line counting done / processing / failed. The exit code is the worst item's.

local batch = require("tencentcloud.iotexplorer.batch")
local errors = require("tencentcloud.iotexplorer.errors")

local many = {}

-- True when the command names more than one batch, or a file of them.
function many.wanted(args)
  return args.options["BatchProductionIds-file"] ~= nil or #(args.repeated.BatchProductionId or {}) > 1
end

-- The ids in input order: the options first, then the file's lines (blank lines and spaces ignored).
function many.ids(args)
  local ids = {}
  for _, id in ipairs(args.repeated.BatchProductionId or {}) do
    ids[#ids + 1] = id
  end
  local path = args.options["BatchProductionIds-file"]
  if path then
    local f = io.stdin
    if path ~= "-" then
      local ferr
      f, ferr = io.open(path, "rb")
      if not f then
        return nil, "--BatchProductionIds-file: cannot read " .. path .. ": " .. tostring(ferr)
      end
    end
    for line in f:lines() do
      local id = line:match("^%s*(.-)%s*$")
      if id ~= "" then
        ids[#ids + 1] = id
      end
    end
    if f ~= io.stdin then
      f:close()
    end
  end
  if #ids == 0 then
    return nil, "no batch ids given (--BatchProductionId ID, or ids in --BatchProductionIds-file)"
  end
  return ids
end

local function failed_reason(res)
  local r = res.LastFailedReason
  return type(r) == "string" and r ~= "" and r or nil
end

-- What one item prints: its Response, or its id and error.
local function item_output(id, res, err)
  if res then
    return res
  end
  return { BatchProductionId = id, Error = { Code = err.code, Message = err.message, RequestId = err.request_id } }
end

local function counts(ids, final)
  local done, failed = 0, 0
  for i = 1, #ids do
    local f = final[i]
    if f and f.res and not failed_reason(f.res) then
      done = done + 1
    elseif f then
      failed = failed + 1
    end
  end
  return done, #ids - done - failed, failed
end

-- Runs the command. Returns the output (a list in input order), the exit code and the ids, or nil, err for a
-- failure of the whole command. exit_code(err) maps an item's error to its exit code.
function many.run(client, args, env, exit_code)
  local o = args.options
  local ids, ierr = many.ids(args)
  if not ids then
    return nil, errors.invalid("BatchProductionIds-file", ierr)
  end
  local w, now = env.err, env.now
  local sleep = client.sleep or require("tencentcloud.iotexplorer.core").sleep
  local deadline = o.deadline or batch.DEFAULT_DEADLINE
  local pause = o["poll-interval"] or batch.DEFAULT_INTERVAL
  local max_pause = math.max(o["max-poll-interval"] or batch.DEFAULT_MAX_INTERVAL, pause)
  local started = now()
  local final, pending = {}, {}
  for i = 1, #ids do pending[i] = i end
  local retrying, last_line

  local function show(elapsed)
    local done, processing, failed = counts(ids, final)
    local line = string.format("%d batches: %d done, %d processing, %d failed", #ids, done, processing, failed)
      .. (retrying and (", retrying: " .. retrying) or "")
    if w.tty then
      w.draw(line .. string.format(", %.1fs", elapsed))
    elseif line ~= last_line then
      w.say(line .. string.format(", %.1fs", elapsed))
    end
    last_line = line
  end

  while #pending > 0 do
    local remaining = deadline - (now() - started)
    if remaining <= 0 then
      for _, i in ipairs(pending) do
        final[i] = { err = errors.new(errors.TIMEOUT, string.format("batch %s was not done within the deadline "
          .. "of %gs", ids[i], deadline), { deadline = true }) }
      end
      break
    end
    local list = {}
    for k, i in ipairs(pending) do
      list[k] = { ProductId = o.ProductId, BatchProductionId = ids[i] }
    end
    local results, errs = client:describe_batch_productions(list, { concurrency = o.concurrency,
      deadline = o.wait and remaining or nil })
    if not results then
      w.finish()
      return nil, errs
    end
    local still = {}
    retrying = nil
    for k, i in ipairs(pending) do
      local res, err = results[k], errs[k]
      if res and (not o.wait or failed_reason(res) or res.Status == 3) then
        final[i] = { res = res }
      elseif res then
        still[#still + 1] = i
      elseif err.code == errors.INTERRUPTED then
        w.finish()
        return nil, err
      elseif o.wait and (err.retryable or err.deadline) then
        retrying = err.code
        still[#still + 1] = i
      else
        final[i] = { err = err }
      end
    end
    pending = still
    if not o.wait then
      break
    end
    show(now() - started)
    -- The pause, a second at a time: the elapsed time ticks and a trapped signal ends it.
    local pause_ends = math.min(now() + pause, started + deadline)
    while #pending > 0 and now() < pause_ends do
      if env.interrupted() then
        w.finish()
        return nil, errors.new(errors.INTERRUPTED, "interrupted", { signal = env.interrupted() })
      end
      sleep(math.min(pause_ends - now(), batch.TICK))
      if w.tty then show(now() - started) end
    end
    pause = math.min(pause * 1.5, max_pause)
  end
  if o.wait then
    show(now() - started)
    w.keep()
  end

  local out, worst = {}, 0
  for i, id in ipairs(ids) do
    local f = final[i]
    local err = f.err
    if f.res and failed_reason(f.res) then
      err = errors.new(errors.BATCH_FAILED, "batch " .. id .. " failed: " .. failed_reason(f.res),
        { request_id = f.res.RequestId })
    end
    if err then
      w.say(id, ": ", tostring(err.code), ": ", tostring(err.message),
        err.request_id and (" (RequestId: " .. tostring(err.request_id) .. ")") or "")
      worst = math.max(worst, exit_code(err))
    end
    out[i] = item_output(id, f.res, f.err)
  end
  return out, worst, ids
end

-- For --output table: one row per batch.
function many.rows(out, ids)
  local rows = {}
  for i, item in ipairs(out) do
    rows[i] = {
      BatchProductionId = ids[i], Status = item.Status, SuccessCount = item.SuccessCount,
      BatchCnt = item.BatchCnt, LastFailedReason = item.LastFailedReason,
      Error = item.Error and item.Error.Code or "",
    }
  end
  return { Batches = rows }
end

return many

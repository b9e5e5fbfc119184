-- The commands that do more than one call: DescribeBatchProduction --wait / --download and
-- GetBatchProductionsList --all. Each returns res (to print), or nil, err, or nil, nil, true when it has
-- written its output itself.

local progress = require("tencentcloud.iotexplorer.cli.progress")

local run = {}

-- DescribeBatchProduction, with --wait and --download. env.temporaries collects files to remove if the
-- process is interrupted; env.interrupted() is the signal that arrived, or nil.
function run.describe(client, params, o, env)
  local batch = require("tencentcloud.iotexplorer.batch")
  local w = env.err
  local res, err
  if o.wait then
    local waiter = progress.waiter(w, params.BatchProductionId, batch.STATUS)
    res, err = client:wait_batch_production(params, {
      deadline = o.deadline, interval = o["poll-interval"], max_interval = o["max-poll-interval"],
      on_progress = waiter.on_progress, on_retry = waiter.on_retry, on_tick = waiter.on_tick,
    })
    waiter.finish()
    if not res then
      return nil, err
    end
  end
  if not o.download then
    if not res then
      res, err = client:describe_batch_production(params)
    end
    return res, err
  end

  -- "-": whole or nothing on stdout too. The core keeps the CSV in a temporary that has no name (nothing
  -- another user could open in a shared folder) and writes it to standard output once complete.
  local to_stdout = o.download == "-"
  local now = env.now
  local path = o.download
  env.stdout:flush()
  local bar = w.tty and progress.download_bar(w, now) or nil
  -- libcurl calls this at least once a second, data or not: a trapped signal cancels the transfer there,
  -- and batch.download removes the partial file.
  local function on_progress(received, total)
    if env.interrupted() then
      return false
    end
    if bar then
      bar.progress(received, total)
    end
  end
  local out
  out, err = client:download_batch_production(params, path, { on_progress = on_progress })
  if bar then
    bar.finish()
  end
  if not out then
    return nil, err   -- nothing was left behind, under `path` or next to it
  end
  if to_stdout then
    return nil, nil, true
  end
  w.say(string.format("saved %d bytes to %s", out.bytes, path))
  return out.response
end

-- GetBatchProductionsList --all: every page, one result.
function run.list_all(client, params)
  local items = {}
  for item, err in client:each_batch_production(params) do
    if not item then
      return nil, err
    end
    items[#items + 1] = item
  end
  return { BatchProductions = items, TotalCnt = #items }
end

return run

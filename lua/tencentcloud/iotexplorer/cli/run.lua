-- The commands that do more than one call: DescribeBatchProduction --wait / --download and
-- GetBatchProductionsList --all. Each returns res (to print), or nil, err, or nil, nil, true when it has
-- written its output itself.

local errors = require("tencentcloud.iotexplorer.errors")
local progress = require("tencentcloud.iotexplorer.cli.progress")

local run = {}

local function copy_to(path, out)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  while true do
    local chunk = f:read(65536)
    if not chunk then
      break
    end
    out:write(chunk)
  end
  f:close()
  out:flush()
  return true
end

local function private_path(now)
  local tmpdir = os.getenv("TMPDIR")
  return string.format("%s/tciot-%d-%x.csv", (tmpdir and tmpdir ~= "") and tmpdir or "/tmp", os.time(),
    math.floor(now() * 1e6) % 0x10000000)
end

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

  local to_stdout = o.download == "-"
  local now = env.now
  -- Whole or nothing on stdout too: the CSV goes to a private file first, printed once complete.
  local path = to_stdout and private_path(now) or o.download
  if to_stdout then
    env.temporaries[#env.temporaries + 1] = path
  end
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
    local ok, cerr = copy_to(path, env.stdout)
    os.remove(path)
    if not ok then
      return nil, errors.new(errors.FILE_ERROR, tostring(cerr), { stage = "download" })
    end
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

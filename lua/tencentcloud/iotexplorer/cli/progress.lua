-- What tciot writes to stderr: messages (every value from the service escaped, see format.escape), the
-- --wait progress line, the download bar and the --verbose log. On a terminal the progress line is redrawn
-- in place, cut to the terminal's width so that a narrow window leaves no stale wrapped line; elsewhere
-- it is plain lines, one per change.

local format = require("tencentcloud.iotexplorer.cli.format")

local progress = {}

local escape = format.escape

-- The terminal's width in columns: stty on stderr's terminal, else $COLUMNS, else 80.
function progress.columns()
  local p = io.popen("stty size <&2 2>/dev/null")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  local cols = tonumber(out:match("^%d+%s+(%d+)"))
  if not cols or cols < 1 then
    cols = tonumber(os.getenv("COLUMNS") or "")
  end
  if not cols or cols < 1 then
    cols = 80
  end
  return math.floor(cols)
end

-- Cuts s (ASCII after escaping, UTF-8 otherwise) to at most `cols` display columns.
local function fit(s, cols)
  if format.width(s) <= cols then
    return s
  end
  local out, w = {}, 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if w + 1 > cols - 1 then break end
    out[#out + 1] = ch
    w = w + 1
  end
  return table.concat(out) .. "~"
end
progress.fit = fit

-- The stderr writer. say(...) writes one line "tciot: ...", each piece escaped. A redrawn line is drawn
-- with draw(text) and ended with finish().
function progress.writer(stream, tty, columns)
  local w = { tty = tty }
  local open = false
  columns = columns or progress.columns
  function w.say(...)
    w.finish()
    local parts = {}
    for i = 1, select("#", ...) do
      parts[i] = escape((select(i, ...)))
    end
    stream:write("tciot: ", table.concat(parts), "\n")
    stream:flush()
  end
  -- Writes bytes tciot made itself (no value from the service): the download file to stdout goes
  -- elsewhere; this is for help and usage text.
  function w.raw(s)
    w.finish()
    stream:write(s)
    stream:flush()
  end
  function w.draw(text)
    local line = fit(escape(text), math.max(columns() - 1, 10))
    stream:write("\r\27[K", line)
    stream:flush()
    open = true
  end
  function w.finish()
    if open then
      stream:write("\r\27[K")
      stream:flush()
      open = false
    end
  end
  -- Keeps the last redrawn line visible (ends it with a newline) instead of clearing it.
  function w.keep()
    if open then
      stream:write("\n")
      stream:flush()
      open = false
    end
  end
  return w
end

-- The --wait reporter: on_progress, on_retry and on_tick for batch.wait, and finish().
-- On a terminal one line, redrawn every second; elsewhere a line per change of status or error.
function progress.waiter(w, batch_id, status_names)
  local state, retrying, last_key = nil, nil, nil
  local r = {}
  local function describe(elapsed)
    local line
    if state then
      line = string.format("%s: Status %s (%s), %s/%s devices", batch_id, tostring(state.Status),
        status_names[state.Status] or "unknown", tostring(state.SuccessCount or "?"),
        tostring(state.BatchCnt or "?"))
    else
      line = batch_id .. ": waiting for the first answer"
    end
    if retrying then
      line = line .. ", retrying: " .. tostring(retrying)
    end
    return line .. string.format(", %.1fs", elapsed)
  end
  local function show(elapsed, key)
    if w.tty then
      w.draw(describe(elapsed))
    elseif key ~= last_key then
      w.say(describe(elapsed))
    end
    last_key = key
  end
  function r.on_progress(res, elapsed)
    state, retrying = res, nil
    show(elapsed, tostring(res.Status) .. "/" .. tostring(res.SuccessCount) .. "/" .. tostring(res.LastFailedReason))
  end
  function r.on_retry(err, elapsed)
    retrying = err.code
    show(elapsed, "retry/" .. tostring(err.code) .. "/" .. elapsed)
  end
  function r.on_tick(elapsed)
    if w.tty then
      w.draw(describe(elapsed))
    end
  end
  function r.finish()
    w.keep()
  end
  return r
end

local function format_bytes(n)
  if n >= 1024 * 1024 then
    return string.format("%.1f MiB", n / 1048576)
  elseif n >= 1024 then
    return string.format("%.1f KiB", n / 1024)
  end
  return string.format("%d B", n)
end

function progress.download_bar(w, now)
  local drawn_at, shown = 0, -1
  local bar = {}
  function bar.progress(received, total)
    local t = now()
    if received == shown or (t - drawn_at < 0.1 and not (total > 0 and received == total)) then
      return
    end
    drawn_at, shown = t, received
    if total > 0 then
      local filled = math.floor(30 * received / total)
      w.draw(string.format("[%s%s] %3d%%  %s / %s", string.rep("#", filled), string.rep("-", 30 - filled),
        math.floor(100 * received / total), format_bytes(received), format_bytes(total)))
    else
      w.draw(format_bytes(received))
    end
  end
  bar.finish = w.finish
  return bar
end

-- The --verbose logger: one line per attempt, naming the credential source, never a secret.
function progress.logger(w)
  return function(r)
    local parts = { string.format("%s attempt %s:", tostring(r.action), tostring(r.attempt)) }
    if r.status == "ok" then
      parts[#parts + 1] = "ok"
    else
      parts[#parts + 1] = tostring(r.code)
      if r.http_status and r.http_status ~= 200 then
        parts[#parts + 1] = "(HTTP " .. tostring(r.http_status) .. ")"
      end
      if r.retryable then
        parts[#parts + 1] = "retryable"
      end
    end
    parts[#parts + 1] = string.format("in %.3fs", tonumber(r.duration) or 0)
    if r.bytes then
      parts[#parts + 1] = tostring(r.bytes) .. " bytes"
    end
    if r.request_id then
      parts[#parts + 1] = "RequestId " .. tostring(r.request_id)
    end
    if r.credentials then
      parts[#parts + 1] = "credentials from " .. tostring(r.credentials)
    end
    if (tonumber(r.rate_wait) or 0) >= 0.001 then
      parts[#parts + 1] = string.format("(after %.3fs in the rate limiter)", r.rate_wait)
    end
    w.say(table.concat(parts, " "))
  end
end

return progress

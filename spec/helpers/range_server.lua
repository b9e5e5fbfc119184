-- A file server for download specs, on loopback, with the faults the emulator lacks: a transfer cut
-- mid-way, and Range requests answered with 206 (or ignored).
--
--   local files = require("helpers.range_server").start{ size = 200000 }
--   files.url .. "/cut-resume"   -- the first transfer is cut halfway; Range requests get 206
--   files.url .. "/cut-restart"  -- the first transfer is cut halfway; Range is ignored (200, whole body)
--   files.url .. "/cut-always"   -- every transfer is cut halfway
--   files.url .. "/whole"        -- the body, 200
--   files.body                   -- what a complete download holds
--   files:log()                  -- { { path, range }, ... } requests seen since the last reset (range "" if none)
--   files:reset(); files:stop()
--
-- Started as `lua5.4 spec/helpers/range_server.lua serve SIZE`. One connection at a time, HTTP/1.1 with
-- Connection: close.
local socket = require("socket")

-- size bytes of CSV-looking text, the same on both sides.
local function body_of(size)
  local parts, n, i = {}, 0, 0
  while n < size do
    i = i + 1
    local line = string.format("R32ONVL0EU,device%06d,secret%026d\n", i, i * 7919)
    parts[#parts + 1] = line
    n = n + #line
  end
  return table.concat(parts):sub(1, size)
end

local function serve(size)
  local body = body_of(size)
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  io.stdout:write("RANGE_READY ", port, "\n")
  io.stdout:flush()
  local log, served = {}, {}
  while true do
    local client = server:accept()
    client:settimeout(5)
    local line = client:receive("*l") or ""
    local path = line:match("^GET (%S+)") or ""
    local range = ""
    while true do
      local h = client:receive("*l")
      if not h or h == "" then break end
      range = h:match("^[Rr]ange:%s*(.-)%s*$") or range
    end
    local function send(status, headers, data)
      local head = { "HTTP/1.1 " .. status, "Connection: close" }
      for _, h in ipairs(headers) do head[#head + 1] = h end
      client:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. data)
    end
    if path == "/_log" then
      local out = {}
      for _, e in ipairs(log) do out[#out + 1] = e[1] .. "\t" .. e[2] end
      local text = table.concat(out, "\n")
      send("200 OK", { "Content-Length: " .. #text }, text)
    elseif path == "/_reset" then
      log, served = {}, {}
      send("200 OK", { "Content-Length: 0" }, "")
    elseif path == "/_stop" then
      send("200 OK", { "Content-Length: 0" }, "")
      client:close()
      break
    else
      log[#log + 1] = { path, range }
      served[path] = (served[path] or 0) + 1
      local from = tonumber(range:match("^bytes=(%d+)%-$") or "")
      local cut = path == "/cut-always" or ((path == "/cut-resume" or path == "/cut-restart") and served[path] == 1)
      if from and path == "/cut-resume" and from < size then
        send("206 Partial Content", { "Content-Length: " .. (size - from),
          string.format("Content-Range: bytes %d-%d/%d", from, size - 1, size) }, body:sub(from + 1))
      elseif cut then
        send("200 OK", { "Content-Length: " .. size }, body:sub(1, math.floor(size / 2)))   -- then it drops
      else
        send("200 OK", { "Content-Length: " .. size }, body)
      end
    end
    client:close()
  end
end

if arg and arg[1] == "serve" then
  serve(tonumber(arg[2]))
  os.exit(0)
end

-- The spec side (runs under whichever interpreter busted uses).
local M = {}
M.__index = M

local function get(self, path)
  local c = assert(socket.connect("127.0.0.1", self.port))
  c:settimeout(5)
  c:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n")
  local data = c:receive("*a")
  c:close()
  return (data or ""):match("\r\n\r\n(.*)$")
end

function M.start(o)
  local size = (o and o.size) or 200000
  local pipe = assert(io.popen("exec env -u LD_PRELOAD lua5.4 spec/helpers/range_server.lua serve " .. size, "r"))
  local line = pipe:read("*l") or ""
  local port = line:match("^RANGE_READY (%d+)")
  assert(port, "range server did not start: " .. line)
  local self = setmetatable({ pipe = pipe, port = tonumber(port), body = body_of(size) }, M)
  self.url = "http://127.0.0.1:" .. port
  return self
end

function M:log()
  local out = {}
  for entry in (get(self, "/_log") or ""):gmatch("[^\n]+") do
    local path, range = entry:match("^(.-)\t(.*)$")
    out[#out + 1] = { path, range }
  end
  return out
end

function M:reset() get(self, "/_reset") end

function M:stop()
  if self.pipe then
    pcall(get, self, "/_stop")
    self.pipe:close()
    self.pipe = nil
  end
end

return M

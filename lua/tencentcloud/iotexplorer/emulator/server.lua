-- Minimal HTTP/1.1 server on lua-socket: non-blocking sockets, socket.select, and one
-- coroutine per connection, so a delayed response never holds up other connections. Used by the
-- emulator and by the specs' other stand-in servers (spec/helpers/metadata_server.lua).
--
-- select() cannot watch a descriptor numbered FD_SETSIZE (1024) or more, and Debian has no lua-posix
-- (poll) for Lua 5.4. So the server holds at most `max_connections` open at once (default 900, well below
-- FD_SETSIZE with room for the process's other descriptors). Past that it stops accepting: the kernel
-- keeps further connections in the listen backlog (4096), and to make room it closes the connection that
-- has been idle longest between two requests, as HTTP/1.1 lets a server do with a persistent connection
-- (clients reopen it). A connection that has not sent its first request yet is never closed this way.
local socket = require("socket")

local M = {}
M.__index = M

local MAX_HEADER_BYTES = 64 * 1024
local REASONS = {
  [100] = "Continue", [200] = "OK", [204] = "No Content", [301] = "Moved Permanently",
  [302] = "Found", [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [411] = "Length Required", [413] = "Payload Too Large",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

M.MAX_CONNECTIONS = 900
M.BACKLOG = 4096

-- opts: host, port, handler(req) -> resp, date(), idle_timeout(), max_body, max_connections,
-- on_accept(), log(msg), exit_on_stdin_eof, too_large(req, length), reject(req, status, message).
-- A handler may set req.done, a function called once the answer is sent or the connection is lost.
-- resp: status, headers (map), body, close, delay (s), reset ("before"|"headers"),
-- truncate (send half the body under the full Content-Length, then close).
function M.new(opts)
  return setmetatable({
    opts = opts,
    waiting = {},   -- co -> {kind = "read"|"write"|"sleep", sock, deadline}
    socks = {},     -- co -> client socket
    conns = {},     -- co -> connection state
    open = 0,
    stopped = false,
  }, M)
end

function M:listen()
  local srv, err = socket.bind(self.opts.host or "127.0.0.1", self.opts.port or 0, M.BACKLOG)
  if not srv then return nil, err end
  srv:settimeout(0)
  self.listener = srv
  local _, port = srv:getsockname()
  self.port = tonumber(port)
  return self.port
end

local function log(self, msg)
  if self.opts.log then self.opts.log(msg) end
end

-- Yield helpers, run inside a connection coroutine. They return false on timeout.
local function wait(kind, sock, deadline)
  return coroutine.yield(kind, sock, deadline)
end

local function sleep(seconds)
  wait("sleep", nil, socket.gettime() + seconds)
end

-- Reads more bytes into conn.buf. Returns false when the peer closed or the deadline passed.
local function fill(conn, max, deadline)
  while true do
    local data, err, partial = conn.sock:receive(max or 8192)
    local chunk = data or partial
    if chunk and #chunk > 0 then
      conn.buf = conn.buf .. chunk
      conn.idle_since = nil
      if err == "closed" then conn.eof = true end
      return true
    end
    if err == "closed" or (err and err ~= "timeout") then conn.eof = true; return false end
    if not wait("read", conn.sock, deadline) then return false end
  end
end

local function send_all(conn, data)
  local i = 1
  while i <= #data do
    local last, err, partial = conn.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      if i <= #data and not wait("write", conn.sock, socket.gettime() + 60) then return false end
    else
      return false
    end
  end
  return true
end

-- Reads the request line and headers. Returns req, or nil, http_status_or_nil.
local function read_head(self, conn)
  local idle = self.opts.idle_timeout and self.opts.idle_timeout() or 60
  local deadline = socket.gettime() + idle
  if conn.served > 0 and conn.buf == "" then conn.idle_since = socket.gettime() end
  while true do
    -- Tolerate stray CRLFs between pipelined requests (RFC 7230 3.5).
    conn.buf = conn.buf:gsub("^\r?\n", "")
    local head_end = conn.buf:find("\r\n\r\n", 1, true)
    if head_end then
      local head = conn.buf:sub(1, head_end - 1)
      conn.buf = conn.buf:sub(head_end + 4)
      local first, rest = head:match("^([^\r\n]*)\r?\n?(.*)$")
      local method, target, version = first:match("^(%u+) (%S+) HTTP/(%d%.%d)$")
      if not method then return nil, 400 end
      local headers, dup = {}, {}
      for line in (rest .. "\r\n"):gmatch("(.-)\r\n") do
        if line ~= "" then
          local name, value = line:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
          if not name then return nil, 400 end
          name = name:lower()
          if headers[name] then dup[name] = true; headers[name] = headers[name] .. ", " .. value
          else headers[name] = value end
        end
      end
      if dup["content-length"] then return nil, 400 end
      local path, query = target:match("^([^?]*)%??(.*)$")
      return {
        method = method, target = target, path = path, query = query,
        version = version, headers = headers,
      }
    end
    if #conn.buf > MAX_HEADER_BYTES then return nil, 431 end
    if conn.eof or not fill(conn, 8192, deadline) then return nil end
  end
end

local function read_body(conn, length)
  if length <= #conn.buf then
    local body = conn.buf:sub(1, length)
    conn.buf = conn.buf:sub(length + 1)
    return body
  end
  -- Collect chunks in a table: concatenating a 10 MB body piecewise would be quadratic.
  local parts, have = { conn.buf }, #conn.buf
  conn.buf = ""
  local deadline = socket.gettime() + 60
  while have < length do
    local data, err, partial = conn.sock:receive(math.min(length - have, 65536))
    local chunk = data or partial
    if chunk and #chunk > 0 then
      parts[#parts + 1] = chunk
      have = have + #chunk
    elseif err == "timeout" then
      if not wait("read", conn.sock, deadline) then return nil end
    else
      return nil
    end
  end
  return table.concat(parts)
end

local function render_head(self, resp, length, close)
  local lines = { string.format("HTTP/1.1 %d %s", resp.status, REASONS[resp.status] or "Unknown") }
  local headers = resp.headers or {}
  local has = {}
  for k in pairs(headers) do has[k:lower()] = true end
  if not has["date"] then
    local date = self.opts.date and self.opts.date() or os.date("!%a, %d %b %Y %H:%M:%S GMT")
    lines[#lines + 1] = "Date: " .. date
  end
  lines[#lines + 1] = "Server: tencentcloud-iotexplorer-emulator"
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. tostring(v) end
  if not has["content-length"] then lines[#lines + 1] = "Content-Length: " .. length end
  lines[#lines + 1] = "Connection: " .. (close and "close" or "keep-alive")
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- Close with RST instead of FIN, to emulate a connection reset.
local function abort(conn)
  conn.sock:setoption("linger", { on = true, timeout = 0 })
  conn.sock:close()
  conn.closed = true
end

-- After an early error response, stop sending and drain what the client still
-- sends, so that our close does not turn into an RST that eats the response.
local function lingering_close(conn)
  conn.sock:shutdown("send")
  local deadline = socket.gettime() + 2
  while not conn.eof and socket.gettime() < deadline do
    conn.buf = ""
    if not fill(conn, 65536, deadline) then break end
  end
  conn.sock:close()
  conn.closed = true
end

local function wants_close(req)
  local c = (req.headers.connection or ""):lower()
  if req.version == "1.0" then return not c:find("keep%-alive") end
  return c:find("close") ~= nil
end

local function simple(status, body)
  return { status = status, headers = { ["Content-Type"] = "text/plain" }, body = body, close = true }
end

-- Sends one response. Returns true when the connection stays open for the next request.
function M:answer(conn, req, resp)
  if resp.delay and resp.delay > 0 then sleep(resp.delay) end
  local close = resp.close or wants_close(req)
  local body = resp.body or ""
  if resp.reset == "before" then abort(conn); return false end
  local head = render_head(self, resp, #body, close or resp.reset or resp.truncate)
  if resp.reset == "headers" then
    send_all(conn, head); abort(conn); return false
  end
  if resp.truncate then
    send_all(conn, head .. body:sub(1, math.floor(#body / 2)))
    return false
  end
  if req.method == "HEAD" then body = "" end
  if not send_all(conn, head .. body) then return false end
  if resp.linger then lingering_close(conn); return false end
  return not close
end

function M:serve(conn)
  while not conn.closed do
    local req, bad = read_head(self, conn)
    if not req then
      if bad then send_all(conn, render_head(self, simple(bad), 0, true)) end
      break
    end
    local resp
    local te, cl = req.headers["transfer-encoding"], req.headers["content-length"]
    if te then
      -- No chunked request bodies: without a length we cannot find the next request.
      local why = "Transfer-Encoding is not supported; send Content-Length"
      resp = self.opts.reject and self.opts.reject(req, 411, why) or simple(411, why .. "\n")
      resp.close, resp.linger = true, true
    elseif cl and not cl:match("^%d+$") then
      resp = simple(400, "bad Content-Length\n")
    else
      local length = tonumber(cl or "0")
      if length > (self.opts.max_body or 10 * 1024 * 1024) then
        resp = self.opts.too_large and self.opts.too_large(req, length) or simple(413, "body too large\n")
        resp.close, resp.linger = true, true
      else
        if (req.headers.expect or ""):lower() == "100-continue" then
          send_all(conn, "HTTP/1.1 100 Continue\r\n\r\n")
        end
        req.body = read_body(conn, length)
        if not req.body then break end
        local ok, result = pcall(self.opts.handler, req)
        if ok then resp = result else
          log(self, "handler error: " .. tostring(result))
          resp = simple(500, "emulator error\n")
        end
      end
    end
    local keep = self:answer(conn, req, resp)
    conn.served = conn.served + 1
    if req.done then req.done() end
    if not keep then break end
  end
  if not conn.closed then conn.sock:close(); conn.closed = true end
end

function M:spawn(sock)
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  local conn = { sock = sock, buf = "", served = 0 }
  local co = coroutine.create(function() self:serve(conn) end)
  self.socks[co], self.conns[co] = sock, conn
  self.open = self.open + 1
  self:resume(co, true)
end

function M:resume(co, ...)
  self.waiting[co] = nil
  local ok, kind, sock, deadline = coroutine.resume(co, ...)
  if not ok then
    log(self, "connection error: " .. tostring(kind))
    pcall(self.socks[co].close, self.socks[co])
  end
  if coroutine.status(co) == "dead" then
    self.socks[co], self.conns[co] = nil, nil
    self.open = self.open - 1
    return
  end
  self.waiting[co] = { kind = kind, sock = sock, deadline = deadline }
end

-- A select()-able stand-in for stdin: readable means the parent wrote or went away.
local STDIN = { getfd = function() return 0 end, dirty = function() return false end }

function M:open_count()
  return self.open
end

-- The connection idle longest between two requests, or nil.
function M:idlest()
  local victim, since
  for co, conn in pairs(self.conns) do
    if conn.idle_since and (not since or conn.idle_since < since) and self.waiting[co] then
      victim, since = co, conn.idle_since
    end
  end
  return victim
end

function M:evict_idle()
  local victim = self:idlest()
  if not victim then return false end
  local conn = self.conns[victim]
  conn.sock:close()
  conn.closed, conn.eof = true, true
  self:resume(victim, false)
  return true
end

function M:step(max_wait)
  local max = self.opts.max_connections or M.MAX_CONNECTIONS
  local accepting = self.open < max or self:idlest() ~= nil
  local recvt, sendt = {}, {}
  if accepting then recvt[1] = self.listener end
  if self.opts.exit_on_stdin_eof then recvt[#recvt + 1] = STDIN end
  local now = socket.gettime()
  local timeout = max_wait or 1
  for _, w in pairs(self.waiting) do
    if w.kind == "read" then recvt[#recvt + 1] = w.sock
    elseif w.kind == "write" then sendt[#sendt + 1] = w.sock end
    if w.deadline then timeout = math.min(timeout, math.max(0, w.deadline - now)) end
  end
  local r, s = socket.select(recvt, sendt, timeout)
  if r[STDIN] and io.stdin:read(1) == nil then
    self.stopped = true
    return
  end
  if accepting and r[self.listener] then
    while self.open < max or self:idlest() do
      local client = self.listener:accept()
      if not client then break end
      if self.open >= max then self:evict_idle() end
      if self.opts.on_accept then self.opts.on_accept() end
      self:spawn(client)
    end
  end
  now = socket.gettime()
  local ready = {}
  for co, w in pairs(self.waiting) do
    if (w.kind == "read" and r[w.sock]) or (w.kind == "write" and s[w.sock]) then
      ready[#ready + 1] = { co, true }
    elseif w.deadline and w.deadline <= now then
      ready[#ready + 1] = { co, w.kind == "sleep" }
    end
  end
  for _, item in ipairs(ready) do self:resume(item[1], item[2]) end
end

function M:run()
  while not self.stopped do self:step(1) end
  for _, sock in pairs(self.socks) do pcall(sock.close, sock) end
  self.listener:close()
end

return M

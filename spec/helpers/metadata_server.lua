-- A stand-in for the CVM metadata service, on loopback, for the credential specs.
--
--   local meta = require("helpers.metadata_server").start{ role = "iot-role", secret_id = ..., ... }
--   meta.url                    -- "http://127.0.0.1:PORT", give it as metadata_endpoint
--   meta:set{ expires_in = 60 } -- change what it serves (any of the start options)
--   meta:counters()             -- { role = n, creds = n } requests served per path
--   meta:stop()
--
-- Started as `lua5.4 spec/helpers/metadata_server.lua serve`, it serves
--   GET /latest/meta-data/cam/security-credentials/        the role name (404 when role is false)
--   GET /latest/meta-data/cam/security-credentials/<role>  { TmpSecretId, TmpSecretKey, Token,
--                                                           ExpiredTime = now + expires_in, Code = "Success" }
--   GET /_counters, POST /_control (JSON), GET /_stop      for the spec
-- One connection at a time, HTTP/1.0, Connection: close: all a credential fetch needs.

local socket = require("socket")
local cjson = require("cjson")

local PREFIX = "/latest/meta-data/cam/security-credentials/"

local function respond(client, status, body, ctype)
  client:send(string.format("HTTP/1.0 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
    status, ctype or "text/plain", #body, body))
end

local function serve()
  local config = {
    role = "iot-role", secret_id = "TMPID", secret_key = "TMPKEY", token = "TMPTOKEN",
    expires_in = 7200, status = 200, code = "Success",
  }
  local counters = { role = 0, creds = 0 }
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local stat = io.open("/proc/self/stat"):read("*l")
  io.stdout:write("METADATA_READY ", port, " ", stat:match("^(%d+)"), "\n")
  io.stdout:flush()

  while true do
    local client = server:accept()
    client:settimeout(5)
    local line = client:receive("*l")
    local method, path = (line or ""):match("^(%u+) (%S+)")
    local length = 0
    while true do
      local h = client:receive("*l")
      if not h or h == "" then break end
      local n = h:lower():match("^content%-length:%s*(%d+)")
      if n then length = tonumber(n) end
    end
    local body = length > 0 and client:receive(length) or ""

    if path == "/_stop" then
      respond(client, 200, "bye")
      client:close()
      break
    elseif path == "/_counters" then
      respond(client, 200, cjson.encode(counters), "application/json")
    elseif method == "POST" and path == "/_control" then
      local t = cjson.decode(body)
      if t.reset then
        counters = { role = 0, creds = 0 }
        t.reset = nil
      end
      for k, v in pairs(t) do
        if v == cjson.null then v = false end
        config[k] = v
      end
      respond(client, 200, "ok")
    elseif path == PREFIX then
      counters.role = counters.role + 1
      if config.role then
        respond(client, 200, config.role)
      else
        respond(client, 404, "not found")
      end
    elseif config.role and path == PREFIX .. config.role then
      counters.creds = counters.creds + 1
      local doc = {
        TmpSecretId = config.secret_id, TmpSecretKey = config.secret_key, Token = config.token,
        ExpiredTime = os.time() + config.expires_in, Code = config.code,
        Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + config.expires_in),
      }
      respond(client, config.status, cjson.encode(doc), "application/json")
    else
      respond(client, 404, "not found")
    end
    client:close()
  end
end

if select(1, ...) == "serve" then
  serve()
  return
end

-- The spec side (runs under whichever interpreter busted uses).
local M = {}
M.__index = M

local function request(self, method, path, body)
  local c = assert(socket.connect("127.0.0.1", self.port))
  c:settimeout(5)
  body = body or ""
  c:send(string.format("%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", method, path, #body, body))
  local data = c:receive("*a")
  c:close()
  return (data or ""):match("\r\n\r\n(.*)$")
end

function M.start(config)
  local pipe = assert(io.popen("exec env -u LD_PRELOAD lua5.4 spec/helpers/metadata_server.lua serve", "r"))
  local line = pipe:read("*l") or ""
  local port, pid = line:match("^METADATA_READY (%d+) (%d+)")
  assert(port, "metadata server did not start: " .. line)
  local self = setmetatable({ pipe = pipe, port = tonumber(port), pid = tonumber(pid) }, M)
  self.url = "http://127.0.0.1:" .. port
  if config then
    self:set(config)
  end
  return self
end

function M:set(t)
  request(self, "POST", "/_control", cjson.encode(t))
end

function M:reset()
  request(self, "POST", "/_control", cjson.encode({ reset = true }))
end

function M:counters()
  return cjson.decode(request(self, "GET", "/_counters"))
end

function M:stop()
  if self.pipe then
    pcall(request, self, "GET", "/_stop")
    self.pipe:close()
    self.pipe = nil
  end
end

return M

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
-- It runs on the emulator's HTTP server (lua/tencentcloud/iotexplorer/emulator/server.lua).

local socket = require("socket")
local cjson = require("cjson")

local PREFIX = "/latest/meta-data/cam/security-credentials/"

local function respond(status, body, ctype)
  return { status = status, headers = { ["Content-Type"] = ctype or "text/plain" }, body = body, close = true }
end

-- The emulator's HTTP server, with this handler: one server for every stand-in the specs start.
local function serve()
  local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  package.path = here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
  local Server = require("tencentcloud.iotexplorer.emulator.server")
  local config = {
    role = "iot-role", secret_id = "TMPID", secret_key = "TMPKEY", token = "TMPTOKEN",
    expires_in = 7200, status = 200, code = "Success",
  }
  local counters = { role = 0, creds = 0 }
  local server
  local function handle(req)
    local method, path, body = req.method, req.path, req.body
    if path == "/_stop" then
      server.stopped = true
      return respond(200, "bye")
    elseif path == "/_counters" then
      return respond(200, cjson.encode(counters), "application/json")
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
      return respond(200, "ok")
    elseif path == PREFIX then
      counters.role = counters.role + 1
      if config.role then return respond(200, config.role) end
      return respond(404, "not found")
    elseif config.role and path == PREFIX .. config.role then
      counters.creds = counters.creds + 1
      local doc = {
        TmpSecretId = config.secret_id, TmpSecretKey = config.secret_key, Token = config.token,
        ExpiredTime = os.time() + config.expires_in, Code = config.code,
        Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + config.expires_in),
      }
      return respond(config.status, cjson.encode(doc), "application/json")
    end
    return respond(404, "not found")
  end
  server = Server.new({ host = "127.0.0.1", port = 0, handler = handle })
  local port = assert(server:listen())
  local stat = io.open("/proc/self/stat"):read("*l")
  io.stdout:write("METADATA_READY ", port, " ", stat:match("^(%d+)"), "\n")
  io.stdout:flush()
  server:run()
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

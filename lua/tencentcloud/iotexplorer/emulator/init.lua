-- Local emulator of the Tencent Cloud IoT Explorer API 3.0 (and of the STS actions that issue temporary
-- credentials), for tests and offline development. It answers as the service does, so that this library
-- and the official SDKs can both use it unchanged. The rooms:
--   server.lua    HTTP/1.1 over LuaSocket              auth.lua      TC3 signatures, tokens (tc3.lua)
--   actions.lua   one handler per iotexplorer action   sts.lua       AssumeRole, AssumeRoleWithWebIdentity
--   store.lua     device files behind signed links     control.lua   /_emulator/* for specs
--   state.lua     the world (credentials, products,    faults.lua    injected failures
--                 batches, settings, clock)            counters.lua  what was counted; the rate windows
-- This file: the request pipeline, `new`, `run` (a table of options) and `main` (argv).

-- LuaSocket and luaossl are the emulator's own dependencies (the client needs neither): when one is missing,
-- say what to install instead of a bare "module not found".
local function need(module)
  local ok, m = pcall(require, module)
  if not ok then
    error("the emulator needs LuaSocket and luaossl (module '" .. module .. "' is missing): install them with"
      .. " `apt-get install lua-socket lua-luaossl` (Debian) or `luarocks install luasocket luaossl`", 0)
  end
  return m
end
local socket = need("socket")
local rand = need("openssl.rand")
local cjson = require("cjson.safe")
local api = require("tencentcloud.iotexplorer.actions")
local client_defaults = require("tencentcloud.iotexplorer.defaults")
local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
local wire = require("tencentcloud.iotexplorer.emulator.wire")
local auth = require("tencentcloud.iotexplorer.emulator.auth")
local handlers = require("tencentcloud.iotexplorer.emulator.actions")
local sts = require("tencentcloud.iotexplorer.emulator.sts")
local control = require("tencentcloud.iotexplorer.emulator.control")
local State = require("tencentcloud.iotexplorer.emulator.state")
local Store = require("tencentcloud.iotexplorer.emulator.store")
local Faults = require("tencentcloud.iotexplorer.emulator.faults")
local Counters = require("tencentcloud.iotexplorer.emulator.counters")
local Server = require("tencentcloud.iotexplorer.emulator.server")

local M = {}
M.__index = M

M.MAX_BODY = 10 * 1024 * 1024   -- POST
M.MAX_QUERY = 32 * 1024         -- GET

-- opts: fixture (decoded table), host, port, log (function or nil), max_connections.
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    host = opts.host or "127.0.0.1",
    port = opts.port or 0,
    log = opts.log,
    max_connections = opts.max_connections,
    faults = Faults.new(),
    counters = Counters.new(),
  }, M)
  self.state = State.new(opts.fixture, socket.gettime, rand.bytes(32))
  self.store = Store.new(self.state, rand.bytes(32))
  return self
end

function M:base_url()
  return "http://" .. self.host .. ":" .. tostring(self.port)
end

function M:http_date()
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(self.state:clock()))
end

function M:api_error(code, message, rid)
  self.counters:error(code)
  return wire.envelope({ Error = { Code = code, Message = message } }, rid or wire.request_id())
end

-- The service each action belongs to: its credential scope, version and parameter tables.
local ROOMS = {
  iotexplorer = { service = api.SERVICE, version = api.VERSION, run = handlers.run, known = handlers.known },
  sts = { service = sts.SERVICE, version = sts.VERSION, run = sts.run, known = sts.actions },
}
local function room_of(action)
  if sts.actions[action] then return ROOMS.sts end
  return ROOMS.iotexplorer
end

-- Checks transport, headers and authentication; returns the credential (nil for an unsigned STS call)
-- or nil, code, message.
function M:admit(req, action, room)
  local h = req.headers
  for _, name in ipairs({ "X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region" }) do
    if (h[name:lower()] or "") == "" then
      return nil, "MissingParameter", "The request is missing a required header `" .. name .. "`."
    end
  end
  local ts = h["x-tc-timestamp"]
  if not ts:match("^%d+$") or #ts > 12 then
    return nil, "InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds."
  end
  local ctype = (h["content-type"] or ""):lower()
  if req.method == "POST" and not ctype:match("^application/json") then
    return nil, "InvalidParameter", "Content-Type must be application/json."
  elseif req.method == "GET" and not ctype:match("^application/x%-www%-form%-urlencoded") then
    return nil, "InvalidParameter", "A GET request's Content-Type must be application/x-www-form-urlencoded."
  end
  local unsigned = room == ROOMS.sts and sts.actions[action] and not sts.actions[action].signed
  if unsigned and h.authorization == "SKIP" then return false end
  local cred, code, message = auth.authenticate(self.state, req, tonumber(ts), room.service)
  if not cred then
    self.counters:bump("auth_failures")
    return nil, code, message
  end
  return cred
end

-- The answer to one API request (POST or GET on /).
function M:process(req, rid, fault)
  local h = req.headers
  if req.method ~= "POST" and req.method ~= "GET" then
    return self:api_error("UnsupportedProtocol", "The API answers POST and GET with TC3-HMAC-SHA256.", rid)
  end
  if req.method == "GET" and #(req.query or "") > M.MAX_QUERY then
    return self:api_error("RequestSizeLimitExceeded", "A GET request is limited to 32 KB.", rid)
  end
  local action = h["x-tc-action"] or ""
  local room = room_of(action)
  local cred, code, message = self:admit(req, action, room)
  if cred == nil then return self:api_error(code, message, rid) end
  if room == ROOMS.iotexplorer then
    local limit = tonumber(self.state.config.rate_limit) or api.RATE_LIMIT
    if not self.counters:admit(cred.secret_id, action, limit, req.received_at) then
      return self:api_error("RequestLimitExceeded", "Your current request times equals to `"
        .. string.format("%d", math.floor(limit)) .. "` in a second, which exceeds the frequency limit of "
        .. action .. ".", rid)
    end
  end
  if h["x-tc-version"] ~= room.version then
    return self:api_error("NoSuchVersion", "The requested version `" .. h["x-tc-version"] .. "` of service "
      .. room.service .. " does not exist.", rid)
  end
  local spec = room.known[action]
  local region = h["x-tc-region"]
  local unsupported = room == ROOMS.iotexplorer and not (spec and api.available_in(spec, region) or
    not spec and api.region_set[region])
  if unsupported then
    return self:api_error("UnsupportedRegion", "The action is not supported in region " .. region .. ".", rid)
  end
  if not spec then
    return self:api_error("InvalidAction", "The action `" .. action .. "` does not exist.", rid)
  end
  local params
  if req.method == "GET" then
    params = wire.query_params(req.query)
  else
    params = cjson.decode(req.body)
    if type(params) ~= "table" or not req.body:match("^%s*{") then
      return self:api_error("InvalidParameter", "The request body must be a JSON object.", rid)
    end
  end
  local fields, c, m = room.run(self, action, params, req.method == "GET")
  if not fields then return self:api_error(c, m, rid) end
  if fault and fault.kind == "field" then
    if fault.value == nil then fields[fault.field] = nil else fields[fault.field] = fault.value end
  end
  return wire.envelope(fields, rid)
end

function M:handle_api(req)
  local counters = self.counters
  local action = req.headers["x-tc-action"] or ""
  counters:request(action, req.headers)
  counters:begin()
  req.done = function() counters:finish() end
  local rid = wire.request_id()
  local fault = self.faults:take(action)
  local resp
  if fault then
    counters:bump("faults_applied")
    resp = Faults.respond(fault, function(f) return self:process(req, rid, f) end, rid)
  else
    resp = self:process(req, rid)
  end
  local delay = (tonumber(self.state.config.delay_ms) or 0) / 1000
  if delay > 0 then resp.delay = (resp.delay or 0) + delay end
  return resp
end

function M:handle_download(req)
  self.counters:bump("downloads")
  local resp = self.store:handle(req)
  -- Faults reach a download only when they name the action "_download" (e.g. a truncated transfer).
  if resp.status == 200 then
    local fault = self.faults:take("_download", true)
    if fault then
      self.counters:bump("faults_applied")
      return Faults.respond(fault, function() return resp end, wire.request_id())
    end
  end
  return resp
end

function M:handle(req)
  if req.path == "/" then return self:handle_api(req) end
  if req.path:sub(1, 11) == "/_emulator/" then return control.handle(self, req) end
  if req.path:sub(1, 11) == "/_download/" then return self:handle_download(req) end
  return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
end

-- Starts listening; returns the port.
function M:listen(exit_on_stdin_eof)
  self.server = Server.new({
    host = self.host, port = self.port,
    handler = function(req) return self:handle(req) end,
    date = function() return self:http_date() end,
    idle_timeout = function() return tonumber(self.state.config.idle_timeout) or 60 end,
    max_body = M.MAX_BODY,
    max_connections = self.max_connections,
    on_accept = function() self.counters:bump("connections") end,
    log = self.log,
    exit_on_stdin_eof = exit_on_stdin_eof,
    too_large = function()
      self.counters:request("", {})
      return self:api_error("RequestSizeLimitExceeded", "The request body exceeds 10 MB.")
    end,
    reject = function(_, _, message)
      local resp = self:api_error("UnsupportedProtocol", message)
      resp.status = 411
      return resp
    end,
  })
  local port, err = self.server:listen()
  if not port then return nil, err end
  self.port = port
  return port
end

function M:serve_forever()
  self.server:run()
end

-- The shell lines that point this library (and tciot, and the official SDKs' environment chain) at this
-- emulator with its default credential.
function M:env_lines()
  return {
    "export TENCENTCLOUD_SECRET_ID=" .. defaults.SECRET_ID,
    "export TENCENTCLOUD_SECRET_KEY=" .. defaults.SECRET_KEY,
    "export " .. client_defaults.region_variable .. "=" .. api.REGIONS[2],   -- ap-guangzhou
    "export " .. client_defaults.endpoint_variable .. "=" .. self:base_url(),
  }
end

local function read_fixture(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read fixture: " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  local fixture, jerr = cjson.decode(text)
  if type(fixture) ~= "table" then return nil, "fixture is not a JSON object: " .. tostring(jerr) end
  return fixture
end

-- Runs the emulator in the foreground until it is stopped. opts (a plain table, every field optional):
--   port (0: a free one), host ("127.0.0.1"), fixture (a table) or fixture_file (a JSON file's path),
--   delay_ms (added to every API answer), max_connections, exit_on_stdin_eof (also stop when stdin
--   closes), verbose (log to stderr), env (print the export lines, default true), stdout, stderr.
-- Prints "EMULATOR_READY http://HOST:PORT" and then the export lines once listening. Returns an exit
-- code: 0 after a stop, 1 when it cannot listen, 2 for a bad fixture.
function M.run(opts)
  opts = opts or {}
  local out, errout = opts.stdout or io.stdout, opts.stderr or io.stderr
  local fixture = opts.fixture
  if opts.fixture_file then
    local err
    fixture, err = read_fixture(opts.fixture_file)
    if not fixture then errout:write(err, "\n"); return 2 end
  end
  if opts.delay_ms ~= nil then
    fixture = fixture or {}
    fixture.delay_ms = tonumber(opts.delay_ms)
  end
  local ok, emu = pcall(M.new, {
    fixture = fixture, host = opts.host, port = opts.port, max_connections = opts.max_connections,
    log = opts.verbose and function(msg) errout:write(msg, "\n") end or nil,
  })
  if not ok then errout:write("bad fixture: ", tostring(emu), "\n"); return 2 end
  local port, err = emu:listen(opts.exit_on_stdin_eof)
  if not port then errout:write("cannot listen: ", tostring(err), "\n"); return 1 end
  out:write("EMULATOR_READY ", emu:base_url(), "\n")
  if opts.env ~= false then out:write(table.concat(emu:env_lines(), "\n"), "\n") end
  out:flush()
  emu:serve_forever()
  return 0
end

local USAGE = "usage: run.lua [--port N] [--host 127.0.0.1] [--fixture FILE.json] [--delay-ms N]"
  .. " [--max-connections N] [--exit-on-stdin-eof] [--verbose]"

-- argv -> M.run's table.
function M.main(argv)
  local opts = {}
  local valued = { ["--port"] = "port", ["--host"] = "host", ["--fixture"] = "fixture_file",
    ["--delay-ms"] = "delay_ms", ["--max-connections"] = "max_connections" }
  local numeric = { port = true, delay_ms = true, max_connections = true }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local key = valued[a]
    if key then
      local v = argv[i + 1]
      if v == nil or (numeric[key] and not tonumber(v)) then
        io.stderr:write(a, " needs a ", numeric[key] and "number" or "value", "\n", USAGE, "\n")
        return 2
      end
      opts[key] = numeric[key] and tonumber(v) or v
      i = i + 1
    elseif a == "--exit-on-stdin-eof" then opts.exit_on_stdin_eof = true
    elseif a == "--verbose" then opts.verbose = true
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    else io.stderr:write("unknown argument ", tostring(a), "\n", USAGE, "\n"); return 2 end
    i = i + 1
  end
  return M.run(opts)
end

return M

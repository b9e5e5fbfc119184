-- Spec helper: starts the local IoT Explorer emulator (always under lua5.4) as a
-- child process and talks to it over loopback with lua-socket. Works from specs
-- running under lua5.4 or LuaJIT.
--
--   local emulator = require("helpers.emulator")
--   local emu = emulator.start({ fixture = { rate_limit = 5 } })
--   emu:fault({ kind = "status", status = 503 })
--   ... emu.url, emu.secret_id, emu.secret_key ...
--   emu:stop()
local socket = require("socket")
local cjson = require("cjson.safe")
local digest = require("openssl.digest")
local hmac = require("openssl.hmac")
local defaults = require("tencentcloud.iotexplorer.emulator.defaults")
local util = require("helpers.util")

local M = {}
local Emu = {}
Emu.__index = Emu

M.defaults = defaults

local shell_quote, read_file, alive = util.shell_quote, util.read_file, util.alive

---------------------------------------------------------------------------
-- Raw HTTP/1.1 over lua-socket.

-- Reads one response from a connected socket. Returns status, headers (lowercase
-- names), body; or nil, err. `head` = true for a response to HEAD.
function M.read_response(sock, head)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h, herr = sock:receive("*l")
    if not h then return nil, herr end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  if head or status == 204 or status == 304 or (status >= 100 and status < 200) then
    return status, headers, ""
  end
  local body, berr, partial
  local length = tonumber(headers["content-length"] or "")
  if length == 0 then
    body = ""   -- lua-socket's receive(0) reports "closed" on a closed connection
  elseif length then
    body, berr, partial = sock:receive(length)
  else
    body, berr, partial = sock:receive("*a")
  end
  if not body then return nil, berr, partial, status, headers end
  return status, headers, body
end

-- Sends one request on `sock` (or a new connection to host:port) and reads the
-- response. opts: method, path, headers (map), body, sock, keep (keep the socket
-- open and return it as 4th value), timeout.
function M.http(host, port, opts)
  local sock = opts.sock
  if not sock then
    local err
    sock, err = socket.connect(host, port)
    if not sock then return nil, err end
  end
  sock:settimeout(opts.timeout or 10)
  local body = opts.body or ""
  local lines = { (opts.method or "GET") .. " " .. (opts.path or "/") .. " HTTP/1.1" }
  local headers = { Host = host .. ":" .. port, ["Content-Length"] = tostring(#body) }
  if not opts.keep then headers.Connection = "close" end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  for k, v in pairs(headers) do
    if v ~= false then lines[#lines + 1] = k .. ": " .. v end
  end
  local ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  if not ok then sock:close(); return nil, err end
  local status, rheaders, rbody = M.read_response(sock, opts.method == "HEAD")
  if not opts.keep or not status then sock:close() end
  if not status then return nil, rheaders end
  return status, rheaders, rbody, opts.keep and sock or nil
end

---------------------------------------------------------------------------
-- TC3-HMAC-SHA256 signing, independent of both the C module and the emulator.

local function hex(raw)
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function sha256_hex(s) return hex(digest.new("sha256"):final(s)) end
local function hmac256(k, m) return hmac.new(k, "sha256"):final(m) end

M.sha256_hex = sha256_hex

-- The TC3 signature of a string to sign: the derivation chain written out once more, in Lua.
function M.tc3_signature(secret_key, date, service, string_to_sign)
  local k = hmac256(hmac256(hmac256("TC3" .. secret_key, date), service), "tc3_request")
  return hex(hmac256(k, string_to_sign))
end

-- Returns the Authorization header value. p: secret_id, secret_key, timestamp,
-- host, content_type, action, body, signed_headers ("content-type;host" default),
-- service ("iotexplorer"), date (defaults to the UTC date of timestamp), method ("POST"), query ("").
function M.authorization(p)
  local signed = p.signed_headers or "content-type;host"
  local service = p.service or "iotexplorer"
  local values = { ["content-type"] = p.content_type, host = p.host, ["x-tc-action"] = (p.action or ""):lower() }
  local canon = {}
  for name in signed:gmatch("[^;]+") do canon[#canon + 1] = name .. ":" .. (values[name] or "") .. "\n" end
  local creq = table.concat({ p.method or "POST", "/", p.query or "", table.concat(canon), signed,
    sha256_hex(p.body or "") }, "\n")
  local date = p.date or os.date("!%Y-%m-%d", p.timestamp)
  local scope = date .. "/" .. service .. "/tc3_request"
  local sts = table.concat({ "TC3-HMAC-SHA256", tostring(p.timestamp), scope, sha256_hex(creq) }, "\n")
  local sig = M.tc3_signature(p.secret_key, date, service, sts)
  return string.format("TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    p.secret_id, scope, signed, sig)
end

---------------------------------------------------------------------------
-- The emulator handle.

-- opts: fixture (Lua table, encoded to a temporary JSON file), port (default 0),
-- timeout (seconds to wait for EMULATOR_READY, default 10), args (more run.lua arguments, a list).
function M.start(opts)
  opts = opts or {}
  local base = os.tmpname()
  local files = {
    base = base, fixture = base .. ".fixture.json", out = base .. ".out",
    err = base .. ".err", pid = base .. ".pid",
  }
  local fixture = opts.fixture or {}
  util.write_file(files.fixture, assert(cjson.encode(fixture)))
  local run = util.ROOT .. "/lua/tencentcloud/iotexplorer/emulator/run.lua"
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = shell_quote(a) end
  -- The shell records its pid and execs into the emulator (same pid). The pipe to
  -- its stdin is ours: when this process exits, the emulator sees EOF and quits.
  local cmd = string.format(
    "echo $$ > %s; exec env -u LD_PRELOAD lua5.4 %s --port %d --host 127.0.0.1 --fixture %s"
      .. " --exit-on-stdin-eof %s > %s 2> %s",
    shell_quote(files.pid), shell_quote(run), opts.port or 0, shell_quote(files.fixture), table.concat(args, " "),
    shell_quote(files.out), shell_quote(files.err))
  local pipe = assert(io.popen(cmd, "w"))
  local self = setmetatable({ pipe = pipe, files = files }, Emu)
  local url
  util.poll(function()
    self.pid = self.pid or tonumber(read_file(files.pid) or "")
    url = (read_file(files.out) or ""):match("EMULATOR_READY (http://[^\r\n]+)\n")
    return url or (self.pid and not alive(self.pid))
  end, opts.timeout or 10)
  if not url then
    local why = (self.pid and not alive(self.pid)) and "exited" or "did not print EMULATOR_READY within "
      .. (opts.timeout or 10) .. " s"
    local stderr = read_file(files.err) or ""
    self:stop()
    error("emulator " .. why .. "; stderr:\n" .. stderr, 2)
  end
  self.url = url
  self.host, self.port = url:match("^http://([^:/]+):(%d+)")
  self.port = tonumber(self.port)
  if fixture.defaults == false and type(fixture.credentials) == "table" and fixture.credentials[1] then
    self.secret_id = fixture.credentials[1].secret_id
    self.secret_key = fixture.credentials[1].secret_key
    self.token = fixture.credentials[1].token
  else
    self.secret_id, self.secret_key = defaults.SECRET_ID, defaults.SECRET_KEY
    self.tmp_secret_id, self.tmp_secret_key, self.tmp_token =
      defaults.TMP_SECRET_ID, defaults.TMP_SECRET_KEY, defaults.TMP_TOKEN
  end
  return self
end

-- Control request; raises on transport errors or non-200 answers.
function Emu:control(method, path, value)
  local status, headers, body = M.http(self.host, self.port, {
    method = method, path = "/_emulator/" .. path,
    headers = { ["Content-Type"] = "application/json" },
    body = value ~= nil and assert(cjson.encode(value)) or "",
  })
  if status ~= 200 then
    error(string.format("emulator control %s %s failed: %s %s", method, path, tostring(status),
      tostring(body or headers)), 2)
  end
  return cjson.decode(body)
end

function Emu:fault(f) return self:control("POST", "faults", f) end
function Emu:counters() return self:control("GET", "counters") end
function Emu:reset() return self:control("POST", "reset", {}) end
function Emu:set(cfg) return self:control("POST", "config", cfg) end
function Emu:config() return self:control("GET", "config") end
function Emu:seed(batch) return self:control("POST", "batches", batch).batches end
function Emu:batches() return self:control("GET", "batches").batches end
function Emu:add_product(p) return self:control("POST", "products", p).products end
function Emu:sts() return self:control("GET", "sts") end
function Emu:revoke(which) return self:control("POST", "sts/revoke", which) end
function Emu:expire(which) return self:control("POST", "sts/expire", which) end

-- STS calls: AssumeRole signed with the emulator's permanent credential (scope .../sts/...), and
-- AssumeRoleWithWebIdentity unsigned. Return the decoded Response.
function Emu:assume_role(params, opts)
  opts = opts or {}
  opts.service, opts.version = "sts", opts.version or "2018-08-13"
  local _, _, doc = self:call("AssumeRole", params, opts)
  return doc and doc.Response
end

function Emu:assume_role_with_web_identity(params, opts)
  opts = opts or {}
  opts.version, opts.unsigned = opts.version or "2018-08-13", true
  local _, _, doc = self:call("AssumeRoleWithWebIdentity", params, opts)
  return doc and doc.Response
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- params as a query string, keys sorted (GET sends every value as a string).
function M.query(params)
  local keys, parts = {}, {}
  for k in pairs(params or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = urlencode(k) .. "=" .. urlencode(params[k]) end
  return table.concat(parts, "&")
end

-- Signed API call, for specs that need the raw protocol.
-- opts: secret_id, secret_key, token, timestamp, region, version, signed_headers,
-- content_type, body (raw override), headers (extra; false removes one), sock, keep,
-- method ("GET": params in the signed query string), sign_host (the Host value signed, when it differs
-- from the one sent), service (the credential scope's; "sts" for the STS actions), unsigned
-- (Authorization: SKIP).
-- Returns status, headers, decoded JSON (or nil), raw body, kept socket.
function Emu:call(action, params, opts)
  opts = opts or {}
  local get = opts.method == "GET"
  local query = get and M.query(params) or ""
  local body = opts.body or (get and "" or assert(cjson.encode(params or {})))
  local ts = opts.timestamp or os.time()
  local host = self.host .. ":" .. self.port
  local ctype = opts.content_type or (get and "application/x-www-form-urlencoded" or "application/json")
  local headers = {
    ["Content-Type"] = ctype,
    ["X-TC-Action"] = action,
    ["X-TC-Version"] = opts.version or "2019-04-23",
    ["X-TC-Timestamp"] = tostring(ts),
    ["X-TC-Region"] = opts.region or "ap-guangzhou",
    Authorization = opts.unsigned and "SKIP" or M.authorization({
      secret_id = opts.secret_id or self.secret_id, secret_key = opts.secret_key or self.secret_key,
      timestamp = ts, host = opts.sign_host or host, content_type = ctype, action = action, body = body,
      signed_headers = opts.signed_headers, date = opts.date, service = opts.service,
      method = opts.method, query = query,
    }),
  }
  if opts.token then headers["X-TC-Token"] = opts.token end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local status, rheaders, rbody, sock = M.http(self.host, self.port, {
    method = opts.method or "POST", path = get and ("/?" .. query) or "/", headers = headers, body = body,
    sock = opts.sock, keep = opts.keep,
  })
  if not status then return nil, rheaders end
  return status, rheaders, cjson.decode(rbody), rbody, sock
end

-- Opens n connections to the emulator at once, all held open, sends one signed keep-alive
-- DescribeBatchProduction on each, then reads every answer. Runs in a child process (its own descriptor
-- limit, raised with ulimit) and returns { ok = answers without Error, failed = the others } or nil, why.
function Emu:flood(n)
  local cmd = string.format("ulimit -n %d 2>/dev/null || exit 3; exec env -u LD_PRELOAD lua5.4 -e %s %s flood %s %d %d"
    .. " %s %s", n + 200, shell_quote(string.format("package.path=%q .. package.path",
      util.ROOT .. "/spec/?.lua;" .. util.ROOT .. "/lua/?.lua;" .. util.ROOT .. "/lua/?/init.lua;")),
    shell_quote(util.ROOT .. "/spec/helpers/emulator.lua"), self.host, self.port, n, self.secret_id, self.secret_key)
  local ok, out = util.run(cmd)
  local good, bad = (out or ""):match("FLOOD ok=(%d+) failed=(%d+)")
  if not good then return nil, "flood client: " .. tostring(out) .. (ok and "" or " (failed)") end
  return { ok = tonumber(good), failed = tonumber(bad) }
end

local function flood_main(host, port, n, secret_id, secret_key)
  local body = '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9"}'
  local ts = os.time()
  local hostport = host .. ":" .. port
  local request = table.concat({ "POST / HTTP/1.1", "Host: " .. hostport, "Content-Type: application/json",
    "X-TC-Action: DescribeBatchProduction", "X-TC-Version: 2019-04-23", "X-TC-Region: ap-guangzhou",
    "X-TC-Timestamp: " .. ts, "Content-Length: " .. #body,
    "Authorization: " .. M.authorization({ secret_id = secret_id, secret_key = secret_key, timestamp = ts,
      host = hostport, content_type = "application/json", body = body }), "", body }, "\r\n")
  local socks = {}
  for i = 1, n do
    local sock = socket.tcp()
    sock:settimeout(30)
    local ok, err = sock:connect(host, port)
    if not ok then io.stdout:write("connect ", i, ": ", tostring(err), "\n"); os.exit(1) end
    socks[i] = sock
  end
  for i = 1, n do assert(socks[i]:send(request)) end
  local good, bad = 0, 0
  for i = 1, n do
    local status, _, rbody = M.read_response(socks[i])
    if status == 200 and not rbody:find('"Error"', 1, true) then good = good + 1 else bad = bad + 1 end
  end
  for i = 1, n do socks[i]:close() end
  io.stdout:write(string.format("FLOOD ok=%d failed=%d\n", good, bad))
end

-- Opens a keep-alive connection to the emulator.
function Emu:connect()
  local sock = assert(socket.connect(self.host, self.port))
  sock:settimeout(10)
  return sock
end

-- Writes a signed DescribeBatchProduction of the documented batch on `sock` by hand (no response read).
function Emu:send_signed(sock, extra_headers)
  local ts = os.time()
  local body = '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9"}'
  local host = self.host .. ":" .. self.port
  local auth = M.authorization({ secret_id = self.secret_id, secret_key = self.secret_key,
    timestamp = ts, host = host, content_type = "application/json", body = body })
  local lines = { "POST / HTTP/1.1", "Host: " .. host, "Content-Type: application/json",
    "X-TC-Action: DescribeBatchProduction", "X-TC-Version: 2019-04-23", "X-TC-Region: ap-guangzhou",
    "X-TC-Timestamp: " .. ts, "Authorization: " .. auth, "Content-Length: " .. #body }
  for _, h in ipairs(extra_headers or {}) do lines[#lines + 1] = h end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body
  assert(sock:send(table.concat(lines, "\r\n")))
end

function Emu:stop()
  if self.stopped then return end
  self.stopped = true
  if self.pid and alive(self.pid) then os.execute("kill " .. math.floor(self.pid) .. " 2>/dev/null") end
  if self.pipe then pcall(self.pipe.close, self.pipe) end
  for _, path in pairs(self.files) do os.remove(path) end
end

-- A copy of the request parameters `base` with `changes` applied; a change to false removes that
-- parameter (to send a request without it).
function M.with(base, changes)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(changes) do
    if v == false then t[k] = nil else t[k] = v end
  end
  return t
end

-- The hooks of a describe block that runs against one emulator, reset before each test and then given
-- `config` (emulator settings, as for Emu:set):
--   local h = emulator.hooks({ clock_skew = 0 })
--   local emu
--   lazy_setup(function() emu = h.setup() end); lazy_teardown(h.teardown); before_each(h.before_each)
function M.hooks(config)
  local h = {}
  function h.setup()
    h.emu = M.start()
    return h.emu
  end
  function h.teardown()
    if h.emu then h.emu:stop() end
  end
  function h.before_each()
    h.emu:reset()
    h.emu:set(config)
  end
  return h
end

if select(1, ...) == "flood" then
  local _, host, port, n, secret_id, secret_key = ...
  flood_main(host, tonumber(port), tonumber(n), secret_id, secret_key)
  os.exit(0)
end

return M

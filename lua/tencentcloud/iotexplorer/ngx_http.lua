-- tencentcloud.iotexplorer.ngx_http: API calls through nginx's own upstream machinery.
--
-- In rewrite, access and content handlers, ngx.lua sends core.call's requests as a subrequest
-- (ngx.location.capture) to an internal location that proxies to the API over kept-alive, verified TLS
-- connections (the README's nginx.conf has it). nginx's C proxy parses the HTTP; this module signs the
-- request with the bound signer (signer.lua, tc3.c), hands the headers over as nginx variables, and turns
-- what came back into what the core's own transport returns: the core's decoder (core.decode_response) for
-- answers, and the core's error table ({ code, message, sent, http_status?, server_date? }) for failures:
--
--   ClientError.NetworkError       nginx could not connect, or the connection broke (502, a cut body)
--   ClientError.Timeout            proxy_connect_timeout / proxy_read_timeout / proxy_send_timeout ran out
--   ClientError.ResponseTooLarge   the body is over max_response_bytes
--   sent                           false only when no byte of the request reached the upstream
--
-- The internal location must say `proxy_next_upstream off`, so nginx never sends a request twice (a POST
-- is not resent after it was sent anyway; off also keeps a request that never left from going to a second
-- server unannounced), and its header filter calls note_upstream() so the facts above are known.
-- Downloads and phases without subrequests (timers, init_worker, ...) keep the thread pool (ngx.lua).
local core = require("tencentcloud.iotexplorer.core")
local signer = require("tencentcloud.iotexplorer.signer")
local actions = require("tencentcloud.iotexplorer.actions")

local M = {}

M.VAR_PREFIX = "tciot_"

-- ngx.location.capture works in these phases only.
M.CAPTURABLE = { rewrite = true, access = true, content = true }

-- The variable the internal location reads for a header: "X-TC-Action" -> "tciot_x_tc_action".
function M.variable(header)
  return M.VAR_PREFIX .. (header:lower():gsub("-", "_"))
end

-- Every header the signer sends, as the variables the internal location must declare and send
-- (a spec holds the README's nginx.conf to this list).
local variables

function M.variables()
  if variables then return variables end
  local s = assert(signer.new{ secret_id = "x", secret_key = "x", token = "x", language = "en-US",
    region = "ap-guangzhou", host = actions.HOST })
  local _, headers = s:sign("A", actions.VERSION, 0, "{}", {})
  s:close()
  local list = {}
  for name in pairs(headers) do list[#list + 1] = M.variable(name) end
  table.sort(list)
  variables = list
  return list
end

-- Called by the internal location's header_filter_by_lua. Only for an error nginx made itself (502, 504: no
-- answer from the API) does the transport need to know more: whether any byte of the request left.
-- Everything else is known from the capture's result, so an answer costs one status read here.
function M.note_upstream()
  local status = ngx.status
  if status == 502 or status == 504 then
    -- luacheck: push ignore 122 (ngx.ctx is the table the transport passed to the subrequest)
    ngx.ctx.upstream_bytes_sent = ngx.var.upstream_bytes_sent
    -- luacheck: pop
  end
end

local function failure(code, message, sent, status, server_date)
  return { code = code, message = message, sent = sent, http_status = status, server_date = server_date }
end

-- The last number of an nginx upstream variable ("12", or "12, 0" after several servers), or 0.
local function last_number(v)
  if type(v) ~= "string" then return 0 end
  return tonumber(v:match("([%d.]+)[^%d.]*$")) or 0
end

-- Turns a capture's result into the core's answer (Response | nil, err).
local function outcome(res, ctx, max_bytes)
  local status, body = res.status, res.body or ""
  if res.truncated and body == "" and (status == 502 or status == 504) then
    -- nginx's own error: no answer came. Without note_upstream (a location not as in the README) nothing
    -- says whether the request left, so it may have.
    local bytes = ctx.upstream_bytes_sent
    local sent = bytes == nil or last_number(bytes) > 0
    local unknown = bytes == nil and " (whether it was sent is unknown: the location's header_filter_by_lua"
      .. " must call note_upstream, see the README)" or ""
    if status == 504 then
      return nil, failure("ClientError.Timeout", (sent and "no answer from the API within proxy_read_timeout"
        or "could not connect to the API within proxy_connect_timeout") .. unknown, sent)
    end
    return nil, failure("ClientError.NetworkError", (sent and "the connection to the API broke before an answer"
      or "could not connect to the API") .. unknown, sent)
  end
  -- The server's clock matters only to an error (AuthFailure.SignatureExpire repairs skew with it).
  local server_date
  if status ~= 200 or res.truncated or body:find('"Error"', 1, true) then
    local date = res.header and res.header["Date"]
    server_date = type(date) == "string" and ngx.parse_http_time(date) or nil
  end
  if res.truncated then
    return nil, failure("ClientError.NetworkError", "the connection to the API broke during the answer", true,
      status, server_date)
  end
  if #body > max_bytes then
    return nil, failure("ClientError.ResponseTooLarge", "the response is larger than max_response_bytes ("
      .. max_bytes .. ")", true, status, server_date)
  end
  return core.decode_response(body, status, server_date)
end

local json_encode = core.json_encode

-- Returns transport(kind, req) -> Response | nil, err for core.call requests, or nil when the phase has
-- no subrequests or the request is not a call (the caller then uses the thread pool).
-- location: the internal location's URI; max_bytes: the session's max_response_bytes.
function M.new(location, max_bytes)
  local signers, n_signers = {}, 0
  local capture = ngx.location.capture
  local get_phase = ngx.get_phase
  local POST = ngx.HTTP_POST
  local empty = setmetatable({}, { __newindex = function() error("read-only", 2) end })
  local hosts = {}

  -- One bound signer per credentials and session fields, with its variables: those of the headers that are
  -- the same for every call of the signer are filled once, here, from the signer's own header list.
  local function new_entry(req)
    local host = hosts[req.endpoint]
    if not host then
      host = req.endpoint:match("^[%a]+://([^/]+)/?$")
      hosts[req.endpoint] = host
    end
    local s, err = signer.new{ secret_id = req.secret_id, secret_key = req.secret_key, token = req.token,
      region = req.region, language = req.language, host = host }
    if not s then return nil, err end
    if n_signers >= 16 then       -- rotated credentials: forget the old ones (closing wipes their keys)
      for k, old in pairs(signers) do
        old.signer:close()
        signers[k] = nil
      end
      n_signers = 0
    end
    local vars = {}
    for _, v in ipairs(M.variables()) do vars[v] = "" end   -- an unset variable is logged per request
    local _, headers = s:sign("-", "-", 0, "", {})
    for name, value in pairs(headers) do vars[M.variable(name)] = value end
    local e = { signer = s, vars = vars, options = { method = POST, vars = vars },
      secret_id = req.secret_id, secret_key = req.secret_key, token = req.token, region = req.region,
      language = req.language, endpoint = req.endpoint }
    signers[e.secret_id .. "\0" .. e.secret_key .. "\0" .. (e.token or "") .. "\0" .. e.region .. "\0"
      .. (e.language or "") .. "\0" .. e.endpoint] = e
    n_signers = n_signers + 1
    return e
  end

  local last
  local function entry_for(req)
    local e = last
    -- The same credentials as last time (the usual case) are the same strings: compared without hashing.
    if e and e.secret_key == req.secret_key and e.secret_id == req.secret_id and e.token == req.token
      and e.region == req.region and e.language == req.language and e.endpoint == req.endpoint
      and signers[e.key] ~= nil then
      return e
    end
    local key = req.secret_id .. "\0" .. req.secret_key .. "\0" .. (req.token or "") .. "\0" .. req.region
      .. "\0" .. (req.language or "") .. "\0" .. req.endpoint
    e = signers[key]
    if not e then
      local err
      e, err = new_entry(req)
      if not e then return nil, err end
    end
    e.key = key
    last = e
    return e
  end

  local VERSION = actions.VERSION
  local AUTHORIZATION, ACTION = M.variable("Authorization"), M.variable("X-TC-Action")
  local VERSION_VAR, TIMESTAMP = M.variable("X-TC-Version"), M.variable("X-TC-Timestamp")

  return function(kind, req)
    if kind ~= "call" or not M.CAPTURABLE[get_phase()] then
      return nil
    end
    local body = req.body
    if not body then
      local jerr
      body, jerr = json_encode(req.params or empty, "params")
      if not body then return false, jerr end
    end
    local e, err = entry_for(req)
    if not e then return false, err end
    local vars = e.vars
    local action, version, timestamp = req.action, req.version or VERSION, req.timestamp or os.time()
    -- The signer raises on a value no header may carry; the core's transport answers nil, err: so do we.
    -- Checked once per distinct string (the usual action and version are the same strings every call).
    if action ~= e.checked_action or version ~= e.checked_version then
      for field, v in pairs({ action = action, version = version }) do
        if type(v) ~= "string" or v == "" or v:find("[%z\r\n]") then
          return false, { code = "ClientError.InvalidParameter", field = field, sent = false,
            message = field .. " must be a non-empty string without CR, LF or NUL" }
        end
      end
      e.checked_action, e.checked_version = action, version
    end
    -- What sign's arguments change; the signer's other headers are already in vars.
    vars[AUTHORIZATION] = e.signer:sign(action, version, timestamp, body)
    vars[ACTION], vars[VERSION_VAR], vars[TIMESTAMP] = action, version, string.format("%d", timestamp)
    local ctx = {}
    local options = e.options
    options.body, options.ctx = body, ctx
    local res = capture(location, options)
    options.body, options.ctx = nil, nil
    return true, outcome(res, ctx, max_bytes)
  end
end

return M

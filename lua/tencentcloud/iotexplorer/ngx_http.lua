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

-- The Host header of a session's target, as session.c writes it: host[:port], an IPv6 literal bracketed.
local function host_header(o)
  local host = o.host
  if host:find(":", 1, true) and host:sub(1, 1) ~= "[" then host = "[" .. host .. "]" end
  return o.port and (host .. ":" .. o.port) or host
end

-- Returns transport(kind, req) -> Response | nil, err for core.call requests, or nil when the phase has
-- no subrequests or the request is not a signed call (the caller then uses the thread pool).
-- location: the internal location's URI; session_opts: core.new_session's options (the target: host, port,
-- region, language, service, fixed for the client's life; max_response_bytes).
function M.new(location, session_opts)
  local max_bytes = session_opts.max_response_bytes or require("tencentcloud.iotexplorer.defaults").max_response_bytes
  local target = { host = host_header(session_opts), region = session_opts.region,
    language = session_opts.language, service = session_opts.service }
  local signers, n_signers = {}, 0
  local capture = ngx.location.capture
  local get_phase = ngx.get_phase
  local POST = ngx.HTTP_POST
  local empty = setmetatable({}, { __newindex = function() error("read-only", 2) end })

  -- One bound signer per credentials, with its variables: those of the headers that are the same for every
  -- call of the signer are filled once, here, from the signer's own header list.
  local function new_entry(req, key)
    local s, err = signer.new{ secret_id = req.secret_id, secret_key = req.secret_key, token = req.token,
      host = target.host, region = target.region, language = target.language, service = target.service }
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
    local e = { signer = s, vars = vars, options = { method = POST, vars = vars }, key = key,
      secret_id = req.secret_id, secret_key = req.secret_key, token = req.token }
    signers[key] = e
    n_signers = n_signers + 1
    return e
  end

  local last
  local function entry_for(req)
    local e = last
    -- The same credentials as last time (the usual case) are the same strings: compared without hashing.
    if e and e.secret_key == req.secret_key and e.secret_id == req.secret_id and e.token == req.token
      and signers[e.key] == e then
      return e
    end
    local key = req.secret_id .. "\0" .. req.secret_key .. "\0" .. (req.token or "")
    e = signers[key]
    if not e then
      local err
      e, err = new_entry(req, key)
      if not e then return nil, err end
    end
    last = e
    return e
  end

  local VERSION = actions.VERSION
  local AUTHORIZATION, ACTION = M.variable("Authorization"), M.variable("X-TC-Action")
  local VERSION_VAR, TIMESTAMP = M.variable("X-TC-Version"), M.variable("X-TC-Timestamp")

  return function(kind, req)
    if kind ~= "call" or req.unsigned or not M.CAPTURABLE[get_phase()] then
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
    -- A value no header may carry (CR, LF, NUL, "") raises in the signer, as it does in core.call.
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

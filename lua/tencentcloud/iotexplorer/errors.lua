-- Error objects: one shape for every failure the client reports, whether it came
-- from the core (transport, envelope) or from the Lua layer (input checks,
-- credentials, deadlines). Fields:
--   code, message              always
--   request_id, http_status    when the server answered
--   field                      the offending input, for ClientError.InvalidParameter
--   curl_code, sent, server_date  as the core reported them
--   retryable (boolean), attempts (number)  added by the client
--   cause                      the last error behind a deadline's ClientError.Timeout
-- tostring(err) reads "CODE: message (RequestId: id)", or "CODE: message".

local actions = require("tencentcloud.iotexplorer.actions")

local errors = {}

-- Codes the Lua layer raises itself (the core has its own ClientError.* set).
errors.INVALID_PARAMETER = "ClientError.InvalidParameter"
errors.CREDENTIAL_ERROR = "ClientError.CredentialError"
errors.CLIENT_CLOSED = "ClientError.ClientClosed"
errors.TIMEOUT = "ClientError.Timeout"
errors.NETWORK_ERROR = "ClientError.NetworkError"
-- The shared rate-limit store (redis_store.lua with on_failure = "error") could not be reached: nothing sent.
errors.RATE_LIMITER_UNAVAILABLE = "ClientError.RateLimiterUnavailable"
-- Waiting for a batch and downloading its device file (batch.lua).
errors.BATCH_FAILED = "ClientError.BatchFailed"
errors.BATCH_NOT_READY = "ClientError.BatchNotReady"
errors.CANCELLED = "ClientError.Cancelled"
errors.CALLBACK_ERROR = "ClientError.CallbackError"
errors.FILE_ERROR = "ClientError.FileError"
-- A SIGINT or SIGTERM ended the operation (err.signal: 2 or 15).
errors.INTERRUPTED = "ClientError.Interrupted"

local Error = {}
Error.__index = Error

function Error.__tostring(e)
  local s = tostring(e.code) .. ": " .. tostring(e.message)
  if e.request_id then
    s = s .. " (RequestId: " .. tostring(e.request_id) .. ")"
  end
  return s
end

-- The fields copied from a core error table; anything else the core adds later is
-- copied too, but these are the ones we document.
local CORE_FIELDS = { "code", "message", "request_id", "http_status", "field", "curl_code", "sent", "server_date" }

function errors.new(code, message, fields)
  local e = { code = code, message = message or code, retryable = false, attempts = 0 }
  if fields then
    for k, v in pairs(fields) do
      e[k] = v
    end
  end
  return setmetatable(e, Error)
end

-- Wraps the plain table the core returns (or anything else, defensively).
function errors.from_core(t)
  if type(t) ~= "table" then
    return errors.new(errors.NETWORK_ERROR, tostring(t))
  end
  if getmetatable(t) == Error then
    return t
  end
  local e = errors.new(t.code or "ClientError.UnknownError", t.message)
  for k, v in pairs(t) do
    e[k] = v
  end
  for _, k in ipairs(CORE_FIELDS) do
    e[k] = t[k]
  end
  if e.message == nil then
    e.message = e.code
  end
  return e
end

function errors.invalid(field, message)
  return errors.new(errors.INVALID_PARAMETER, message, { field = field, sent = false })
end

-- A deadline ran out: `what` says where ("after 3 attempt(s)", "before the request could be sent"), `last`
-- is the error that led to the wait, if any. Whether anything may have been sent follows from `last`.
function errors.deadline(seconds, what, last)
  local msg = string.format("deadline of %gs passed %s", seconds, what)
  if last then
    msg = msg .. "; last error: " .. tostring(last)
  end
  return errors.new(errors.TIMEOUT, msg, { cause = last, sent = last ~= nil and last.sent ~= false, deadline = true })
end

function errors.is_error(x)
  return type(x) == "table" and getmetatable(x) == Error
end

local function starts_with(s, prefix)
  return type(s) == "string" and s:sub(1, #prefix) == prefix
end

-- Reads only: safe to repeat whatever happened to the first attempt (actions.lua decides).
function errors.is_idempotent(action)
  return not actions.is_write(action)
end

-- Whether another attempt may succeed. For actions that change state we retry only
-- what the server certainly never saw, or what it explicitly refused to process
-- (rate limiting): a timeout after sending may have created a batch already.
function errors.is_retryable(e, action)
  local code = e.code
  if starts_with(code, "RequestLimitExceeded") then
    return true
  end
  if e.sent == false and (code == errors.NETWORK_ERROR or code == errors.TIMEOUT) then
    return true
  end
  if not errors.is_idempotent(action) then
    return false
  end
  if code == errors.NETWORK_ERROR or code == errors.TIMEOUT then
    return true
  end
  if code == "ServiceUnavailable" or code == "InternalError" or starts_with(code, "InternalError.") then
    return true
  end
  local status = e.http_status
  return type(status) == "number" and status >= 500 and status <= 599
end

-- Replaces every occurrence of each secret in s (plain text, not a pattern).
local function scrub(s, secrets)
  for _, secret in ipairs(secrets) do
    if type(secret) == "string" and #secret > 0 then
      local out, pos = {}, 1
      while true do
        local i, j = s:find(secret, pos, true)
        if not i then break end
        out[#out + 1] = s:sub(pos, i - 1)
        out[#out + 1] = "***"
        pos = j + 1
      end
      out[#out + 1] = s:sub(pos)
      s = table.concat(out)
    end
  end
  return s
end

-- Belt and braces: a server or proxy could echo a header back in a message, so the
-- client scrubs every string field of an error for the secrets it holds.
function errors.redact(e, secrets)
  for k, v in pairs(e) do
    if type(v) == "string" then
      e[k] = scrub(v, secrets)
    end
  end
  if errors.is_error(e.cause) then
    errors.redact(e.cause, secrets)
  end
  return e
end

errors.scrub = scrub

return errors

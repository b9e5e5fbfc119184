-- One API call's journey, once its input is checked: credentials, the rate limiter's slot, the core's
-- request, error objects, redaction, logging, retries by the read/write rules and clock-skew repair.
--
-- A call's state lives in a single table, `call`, handed to retry.run as its options; the steps below are
-- plain functions of it, so a call creates no closures (LuaJIT cannot compile closure creation) and, on the
-- success path without a logger, no table besides `call` itself.
--
-- client:_perform(action, fields, opts, invoke, sleep) runs it. `invoke(p, req)` performs one attempt
-- (default: the core's call, or the nginx transport) and `sleep(seconds)` serves both the limiter's wait and
-- the backoff (default: the client's sleep); a scheduler of many calls passes its own pair.

local core = require("tencentcloud.iotexplorer.core")
local actions = require("tencentcloud.iotexplorer.actions")
local check = require("tencentcloud.iotexplorer.check")
local errors = require("tencentcloud.iotexplorer.errors")
local retry = require("tencentcloud.iotexplorer.retry")

local perform = {}

local private

-- The client's private state table (weak-keyed by client), shared with init.lua.
function perform.init(private_state)
  private = private_state
end

-- The core's request table for one action. The fields every attempt fills in are named here too, so that
-- the table is made at its final size (filling them in later would grow it twice).
function perform.request(action, version, params)
  return { action = action, version = version, params = params, secret_id = nil, secret_key = nil, token = nil,
           timeout = nil, timestamp = nil, fresh_connection = nil }
end

-- The request for an action of actions.lua, checked against its table: the region it exists in, then its
-- parameters (check.params). Returns the request, or nil, err (nothing may be sent).
function perform.checked_request(region, action, params)
  if not actions.available_in(action, region) then
    return nil, check.invalid("region", action.name .. " is not available in region " .. tostring(region)
      .. " (use " .. table.concat(action.regions, ", ") .. ")")
  end
  local p, err = check.params(action, params)
  if not p then
    return nil, err
  end
  return perform.request(action.name, action.version, p)
end

local function core_call(p, req)
  if p.transport then
    return p.transport("call", req)
  end
  return core.call(p.session, req)
end
perform.core_call = core_call

-- Remembers the keys an attempt signed with, so that every error of the call can be scrubbed of them.
local function note_secrets(call, creds)
  local secrets = call.secrets
  if not secrets then
    secrets = {}
    call.secrets = secrets
  end
  secrets[#secrets + 1] = creds.secret_key
  secrets[#secrets + 1] = creds.token
end

-- The deadline ran out between attempts (waiting for the limiter, or nothing left to send with).
local function out_of_time(call, creds, what)
  note_secrets(call, creds)
  return errors.deadline(call.deadline, what, call.last_err)
end

local function log_attempt(self, call, n, sent_at, waited, res, err)
  local record = { action = call.action, attempt = n, duration = self.now() - sent_at, rate_wait = waited,
                   credentials = call.source }
  if res ~= nil then
    record.status, record.request_id = "ok", type(res) == "table" and res.RequestId or nil
  else
    record.status, record.code, record.message, record.request_id = "error", err.code, err.message, err.request_id
    record.http_status, record.retryable = err.http_status, errors.is_retryable(err, call.action)
  end
  self:_log(record)
end

local function attempt(n, remaining, call)
  local self, p = call.client, call.p
  local started = remaining and self.now()
  local creds, cerr = p.chain:get()
  if not creds then
    return nil, cerr
  end
  call.source = creds.source

  local waited = 0
  if self.limiter then
    local key = (self.rate_limit_key or creds.secret_id) .. "/" .. call.action
    local w, needed, lerr = self.limiter:acquire(remaining, key, call.sleep)
    if not w then
      if lerr then
        return nil, lerr -- the store failed (ClientError.RateLimiterUnavailable): nothing sent, not retried
      end
      return nil, out_of_time(call, creds, string.format("before the rate limiter's next slot (%.3fs away)", needed))
    end
    waited = w
  end

  -- Waiting for the limiter does not eat into `timeout`, only into the deadline.
  local this_timeout = call.timeout
  if remaining then
    local left = remaining - (self.now() - started)
    if left < 0.001 then
      return nil, out_of_time(call, creds, "before the request could be sent")
    end
    if left < this_timeout then
      this_timeout = left
    end
  end

  -- The request table is the call's own copy of the fields; every attempt rewrites what it changes.
  local req = call.fields
  req.secret_id = creds.secret_id
  req.secret_key = creds.secret_key
  req.token = creds.token
  req.timeout = this_timeout
  req.timestamp = os.time() + self.clock_offset
  -- libcurl silently resends on a reused connection found dead; a write must not go twice.
  req.fresh_connection = call.write

  local sent_at = self.logger and self.now()
  call.sent = call.sent + 1
  local res, err = call.invoke(p, req)
  if res ~= nil then
    if sent_at then
      log_attempt(self, call, n, sent_at, waited, res)
    end
    return res
  end
  note_secrets(call, creds)
  err = errors.redact(errors.from_core(err), call.secrets)
  if sent_at then
    log_attempt(self, call, n, sent_at, waited, nil, err)
  end
  call.last_err = err
  return nil, err
end

local function decide(err, _, call)
  local code = err.code
  if code == "AuthFailure.SignatureExpire" and not call.skew_repaired and type(err.server_date) == "number" then
    -- Our clock is off: sign with the server's time from now on. Once per call, so a server with a broken
    -- Date header cannot make us loop.
    call.skew_repaired = true
    call.client.clock_offset = math.floor(err.server_date - os.time() + 0.5)
    return "now"
  end
  if err.deadline then
    return false
  end
  if type(code) == "string" and code:find("^AuthFailure") then
    -- Temporary keys may have been revoked or rotated: fetch fresh ones and try once more.
    if not call.refetched and call.p.chain:invalidate() then
      call.refetched = true
      return "now"
    end
    if call.refetched then
      err.message = tostring(err.message) .. " (new keys from " .. tostring(call.source) .. " were rejected too)"
    end
    return false
  end
  return errors.is_retryable(err, call.action) and "backoff"
end

local NO_SECRETS = {}

-- A write that was sent and got no answer from the service may have been carried out.
local function mark_ambiguous(err)
  if err.sent ~= false and err.request_id == nil and not (err.cause and err.cause.request_id) then
    err.maybe_applied = true
    err.message = err.message .. " (the request was sent and no answer came back: it may have been carried out;"
      .. " check before sending it again)"
  end
end

function perform.run(self, action, fields, opts, invoke, sleep)
  local p = private[self]
  local call = {
    -- retry.run's options
    attempt = attempt, decide = decide, max_attempts = self.max_attempts, base = self.backoff_base,
    cap = self.backoff_cap, deadline = opts.deadline, now = self.now, sleep = sleep or self.sleep,
    random = p.random,
    -- the call's own state
    client = self, p = p, action = action, fields = fields, invoke = invoke or core_call, sent = 0,
    timeout = opts.timeout or self.timeout, write = actions.is_write(action),
  }
  local res, err = retry.run(call)
  if res ~= nil then
    return res
  end
  -- Requests actually made: an attempt stopped by the deadline before sending does not count.
  err.attempts = call.sent
  err.retryable = errors.is_retryable(err, action)
  if call.write and call.sent > 0 then
    mark_ambiguous(err)
  end
  return nil, errors.redact(err, call.secrets or NO_SECRETS)
end

return perform

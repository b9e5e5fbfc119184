-- tencentcloud.iotexplorer.many: one action over a list of parameter tables, several calls in flight.
--
--   local results, errs = client:call_many("DescribeBatchProduction", list, { concurrency = 8 })
--   for i = 1, #list do print(i, results[i] and results[i].Status or tostring(errs[i])) end
--
-- Each item runs the single call's whole path (Client:_perform): the action's input checks, credentials,
-- the rate limiter's slot, retries, skew repair, logging, redaction. Only the waiting changes hands.
--
-- Outside nginx, `concurrency` worker coroutines take the items one after another. A worker's `invoke`
-- yields the signed request to the scheduler below and its `sleep` (the limiter's wait, retry backoff)
-- yields a wake-up time; the scheduler hands requests to a core multi handle (src/multi.c) and waits in one
-- curl_multi_poll for the next wake-up or finished transfer. No Lua runs while libcurl does, and the
-- process sleeps while nothing is due.
-- Inside nginx each of up to `concurrency` light threads (ngx.thread.spawn) takes the next item and runs
-- it over the client's own nginx transport; the shared-dict limiter spaces every worker's requests.

local core = require("tencentcloud.iotexplorer.core")
local errors = require("tencentcloud.iotexplorer.errors")
local check = require("tencentcloud.iotexplorer.check")
local actions = require("tencentcloud.iotexplorer.actions")
local perform = require("tencentcloud.iotexplorer.perform")

local many = {}

-- LuaJIT: the scheduler runs a few times per call and crosses C and coroutine boundaries at every step,
-- where a trace can only be stitched; compiling those short traces (and flipping the machine code's page
-- protection for each) costs more than interpreting this file.
if type(jit) == "table" then
  jit.off(true, true)
end

many.DEFAULT_CONCURRENCY = 8
many.MAX_CONCURRENCY = 64

local OPTIONS = { "concurrency", "deadline", "timeout", "on_result" }

local invalid = errors.invalid

-- SIGINT or SIGTERM ended a transfer or a wait of an interruptible session (a plain script's Ctrl-C): the
-- whole batch stops.
local INTERRUPTED = "ClientError.Interrupted"

local function check_options(opts)
  if opts == nil then
    opts = {}
  end
  if type(opts) ~= "table" then
    return nil, invalid("opts", "call_many options must be a table")
  end
  local o = check.copy(opts)
  local err = check.known(o, OPTIONS, "call_many option")
    or check.integer(o, "concurrency", 1, many.MAX_CONCURRENCY)
    or check.seconds(o, "deadline") or check.seconds(o, "timeout") or check.func(o, "on_result")
  if err then
    return nil, err
  end
  o.concurrency = o.concurrency or many.DEFAULT_CONCURRENCY
  return o
end

-- ----------------------------------------------------------------------------
-- One item's request, checked as the single call checks it.

-- Returns the fields _perform sends, or nil, err (an input error: the item is never sent).
local function prepare(client, action, params)
  if type(params) ~= "table" then
    return nil, invalid("params", "each item of the list must be a table of parameters")
  end
  local a = actions.by_name[action]
  if not a then
    -- An action this library has no table for: sent as given, like client:call.
    return perform.request(action, actions.VERSION, check.copy(params))
  end
  return perform.checked_request(client.region, a, params)
end

-- ----------------------------------------------------------------------------
-- The batch's bookkeeping, shared by both ways of running it.

local Batch = {}
Batch.__index = Batch

local function new_batch(client, p, action, list, o)
  local n = #list
  return setmetatable({
    client = client, p = p, action = action, list = list, o = o, n = n, next = 1,
    results = { n = n }, errs = { n = n }, fields = {}, input_errs = {},
    deadline_at = o.deadline and (core.now() + o.deadline) or nil,
    -- Why the batch stopped early (on_result failed, the client was closed): the error the items it
    -- leaves get. nil while it runs.
    stopped = nil,
  }, Batch)
end

-- Input checks for every item before anything is sent.
function Batch:prepare_all()
  for i = 1, self.n do
    self.fields[i], self.input_errs[i] = prepare(self.client, self.action, self.list[i])
  end
end

-- Records item i's outcome and tells on_result. An error raised there, or the client closed from there,
-- stops the batch.
function Batch:finish(i, res, err)
  if res ~= nil then
    self.results[i] = res
  else
    if not errors.is_error(err) then
      err = errors.from_core(err)
    end
    self.errs[i] = err
  end
  local on_result = self.o.on_result
  if on_result and not self.stopped then
    local ok, why = pcall(on_result, i, res, self.errs[i])
    if not ok then
      self.stopped = { code = errors.CALLBACK_ERROR,
        message = "the batch stopped because on_result failed: " .. tostring(why) }
    end
  end
  if not self.stopped and self.client.closed then
    self.stopped = { code = errors.CLIENT_CLOSED, message = "the client was closed during call_many" }
  end
  if not self.stopped and res == nil and self.errs[i].code == INTERRUPTED then
    self.stopped = { code = INTERRUPTED, message = self.errs[i].message }
  end
end

-- Item i will not finish: the batch stopped. sent: whether a request of it may have reached the service.
function Batch:leave(i, sent)
  local why = self.stopped
  self.errs[i] = errors.new(why.code, why.message
    .. (sent and "; a request for this item may have reached the service" or ""), { sent = sent })
end

-- The next item to start, or nil. Items the deadline or a stop left unstarted get their error here.
function Batch:take()
  while self.next <= self.n do
    local i = self.next
    self.next = i + 1
    if self.stopped then
      self:leave(i, false)
    elseif not self.fields[i] then
      self:finish(i, nil, self.input_errs[i])
    elseif self.deadline_at and core.now() >= self.deadline_at then
      self:finish(i, nil, errors.new(errors.TIMEOUT, "the call_many deadline of " .. tostring(self.o.deadline)
        .. "s passed before this item started", { sent = false, deadline = true }))
    else
      return i
    end
  end
end

-- Per-call options for an item started now: the per-attempt timeout, and what is left of the deadline.
function Batch:item_options()
  local opts = { timeout = self.o.timeout }
  if self.deadline_at then
    opts.deadline = math.max(self.deadline_at - core.now(), 0.001)
  end
  return opts
end

-- The error an attempt gets when the batch stopped or the client closed before it was sent. sent: whether
-- an earlier attempt of the item may have reached the service (the error must not hide that).
function Batch:refusal(sent)
  local why = self.stopped
    or (self.client.closed and { code = errors.CLIENT_CLOSED, message = "the client is closed" })
  return why and { code = why.code, message = why.message, sent = sent or false }
end

-- ----------------------------------------------------------------------------
-- Outside nginx: coroutines over a core multi handle.

-- A client's multi handle and the concurrency it was made for. Kept between batches so connections are
-- reused; weak keys, so a dropped client takes its multi (and its connections) with it.
local multis = setmetatable({}, { __mode = "k" })

local function get_multi(client, session, concurrency)
  local entry = multis[client]
  if entry and entry.concurrency == concurrency then
    return entry.multi
  end
  if entry then
    multis[client] = nil
    entry.multi:close()
  end
  local m, err = core.new_multi(session, { concurrency = concurrency })
  if not m then
    return nil, err
  end
  multis[client] = { multi = m, concurrency = concurrency }
  return m
end

-- Closes a client's multi handle (client:close() calls this).
function many.close(client)
  local entry = multis[client]
  if entry then
    multis[client] = nil
    entry.multi:close()
  end
end

local SEND, SLEEP = {}, {}

-- What _perform calls for each attempt and each wait, inside a worker's coroutine.
local function yield_invoke(_, req)
  return coroutine.yield(SEND, req)
end

local function yield_sleep(seconds)
  coroutine.yield(SLEEP, seconds)
end

-- Worker w: takes the next item and runs it through _perform until none is left. A worker per unit of
-- concurrency (not a coroutine per item), so coroutines and their grown stacks serve many items.
local function work(b, w)
  while true do
    local i = b:take()
    if not i then
      return
    end
    b.current[w] = i
    local res, err = b.client:_perform(b.action, b.fields[i], b:item_options(), yield_invoke, yield_sleep)
    b.current[w] = nil
    b:finish(i, res, err)
  end
end

-- Hands req (worker w's attempt) to the multi handle, as transfer w. Returns true, or nil, err when it
-- was refused before anything was sent.
function Batch:send(w, req)
  local refused = self:refusal(self.sent[self.current[w]])
  if refused then
    return nil, refused
  end
  local m, err = get_multi(self.client, self.p.session, self.o.concurrency)
  if not m then
    return nil, err
  end
  self.multi = m
  return m:add(w, req)
end

-- Runs worker w from where it waits, with (a, b), until it waits again or ends.
function Batch:step(w, a, b)
  while true do
    local ok, what, value = coroutine.resume(self.workers[w], a, b)
    if not ok then
      -- A bug below _perform, not a failure of the call: report it on the item, start a fresh worker.
      local i = self.current[w]
      self.current[w], self.wakes[w] = nil, nil
      self.workers[w] = coroutine.create(work)
      if i then
        self:finish(i, nil, errors.new("ClientError.InternalError", "call_many item failed: " .. tostring(what),
          { sent = self.sent[i] or false }))
      end
      a, b = self, w
    elseif coroutine.status(self.workers[w]) == "dead" then
      self.workers[w] = nil
      self.live = self.live - 1
      return
    elseif what == SLEEP then
      self.wakes[w] = core.now() + (tonumber(value) or 0)
      return
    else
      local started, err = self:send(w, value)
      if started then
        self.in_flight[w] = true
        return
      end
      a, b = nil, err
    end
  end
end

-- The batch stopped: what is in flight is abandoned (never resent), what waits is dropped.
function Batch:abandon_all()
  for w = 1, self.size do
    local i = self.current[w]
    if self.workers[w] and i then
      local sent = self.sent[i] or false
      if self.in_flight[w] then
        sent = self.multi:abandon(w) or sent
      end
      self:leave(i, sent)
    end
    self.workers[w], self.current[w], self.wakes[w], self.in_flight[w] = nil, nil, nil, nil
  end
  self.live = 0
end

-- Resumes the workers whose transfer finished, then those whose wake-up time has come.
function Batch:wait_and_resume(timeout)
  if self.multi and next(self.in_flight) then
    local ids, results, errs = self.multi:wait(timeout)
    for k = 1, ids and #ids or 0 do
      local w = ids[k]
      local res, err = results[k], errs[k]
      local i = self.current[w]
      if i and (res ~= nil or (err and err.sent ~= false)) then
        self.sent[i] = true
      end
      self.in_flight[w] = nil
      if self.workers[w] and not self.stopped then
        self:step(w, res, err)
      end
    end
  elseif timeout > 0 then
    local slept, err = core.sleep(timeout, true)
    if not slept and not self.stopped then
      self.stopped = { code = err.code, message = err.message }
    end
  end
  local now = core.now()
  for w = 1, self.size do
    local t = self.wakes[w]
    if t and t <= now and not self.stopped then
      self.wakes[w] = nil
      self:step(w)
    end
  end
end

function Batch:run_multi()
  self.size = math.min(self.o.concurrency, self.n)
  self.workers, self.current, self.wakes, self.in_flight, self.sent, self.live = {}, {}, {}, {}, {}, 0
  for w = 1, self.size do
    self.workers[w] = coroutine.create(work)
    self.live = self.live + 1
  end
  for w = 1, self.size do
    if self.stopped then break end
    self:step(w, self, w)
  end
  while self.live > 0 and not self.stopped do
    local wake = math.huge
    for w = 1, self.size do
      local t = self.wakes[w]
      if t and t < wake then wake = t end
    end
    self:wait_and_resume(wake == math.huge and 1 or math.max(wake - core.now(), 0))
  end
  if self.stopped then
    self:abandon_all()
  end
  self:take()   -- after a stop: every item not started gets its error (workers take all the others)
  if self.client.closed then
    many.close(self.client)
  end
end

-- ----------------------------------------------------------------------------
-- Inside nginx: light threads over the client's nginx transport.

function Batch:run_ngx(ngx_support)
  local batch = self
  -- An item's attempts all send the same fields table (_perform's request table): it names the item.
  local sent = setmetatable({}, { __mode = "k" })
  local function invoke(p, req)
    local refused = batch:refusal(sent[req])
    if refused then
      return nil, refused
    end
    local res, err = perform.core_call(p, req)
    if res ~= nil or (type(err) == "table" and err.sent ~= false) then
      sent[req] = true
    end
    return res, err
  end
  local sleep = self.client.sleep
  local function drain()
    while true do
      local i = batch:take()
      if not i then
        return
      end
      local res, err = batch.client:_perform(batch.action, batch.fields[i], batch:item_options(), invoke, sleep)
      batch:finish(i, res, err)
    end
  end
  if not ngx_support.can_spawn() then
    -- Where nginx cannot run light threads the transport blocks anyway: one item after another.
    drain()
    return
  end
  local threads = {}
  for k = 1, math.min(self.o.concurrency, self.n) do
    threads[k] = ngx.thread.spawn(drain)
  end
  for k = 1, #threads do
    ngx.thread.wait(threads[k])
  end
end

-- ----------------------------------------------------------------------------
-- The methods.

-- Installs Client:call_many and its typed shortcut. private: the client's private state (init.lua).
function many.extend(Client, private)
  -- client:call_many(action, list, opts) -> results, errs: both as long as list (field n), in its order;
  -- for each i exactly one of results[i] (the Response) and errs[i] (an error object) is set.
  -- opts: concurrency (default 8, at most 64), deadline (seconds for the whole batch), timeout (per
  -- attempt), on_result(i, res, err) as each item finishes.
  -- Returns nil, err (and sends nothing) on a closed client, a list that is not a sequence or bad options.
  function Client:call_many(action, list, opts)
    if type(self) ~= "table" or getmetatable(self) ~= Client then
      return nil, invalid("self", "call methods with a colon: client:call_many(...)")
    end
    if self.closed then
      return nil, errors.new(errors.CLIENT_CLOSED, "the client is closed", { sent = false })
    end
    if type(action) ~= "string" or not action:find("^%u%w*$") then
      return nil, invalid("action", "action must be an API action name such as \"DescribeBatchProduction\"")
    end
    if type(list) ~= "table" or not check.is_sequence(list) then
      return nil, invalid("list", "list must be a sequence (an array with no holes) of parameter tables")
    end
    local o, err = check_options(opts)
    if not o then
      return nil, err
    end
    local p = private[self]
    local b = new_batch(self, p, action, list, o)
    b:prepare_all()
    if p.transport then
      b:run_ngx(require("tencentcloud.iotexplorer.ngx"))
    else
      b:run_multi()
    end
    return b.results, b.errs
  end

  -- client:describe_batch_productions(list, opts): call_many of DescribeBatchProduction over a list of
  -- { ProductId = ..., BatchProductionId = ... }.
  function Client:describe_batch_productions(list, opts)
    return Client.call_many(self, "DescribeBatchProduction", list, opts)
  end
end

return many

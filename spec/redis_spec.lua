-- The Redis rate-limit store (redis_store.lua over src/redis.c) against a real redis-server of our own.
-- The fleet (several processes and an nginx on one store, against the emulator): spec/redis_fleet_spec.lua.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local redis_core = require("tencentcloud.iotexplorer.redis_core")
local redis_store = require("tencentcloud.iotexplorer.redis_store")
local digest = require("openssl.digest")
local socket = require("socket")
local redis = require("helpers.redis")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local PASSWORD = "pa55-w0rd-never-shown"

local function hex(raw)
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

describe("redis store", function()
  local srv

  setup(function()
    srv = redis.start()
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  local function new(opts, url)
    return assert(redis_store.new(url or srv.url, opts))
  end

  it("parses redis:// and unix:// URLs and refuses others without quoting them", function()
    local t = assert(redis_store.parse_url("redis://:p%40ss@10.0.0.5:6380/2"))
    assert.same({ "10.0.0.5", 6380, 2, "p@ss" }, { t.host, t.port, t.db, t.password })
    assert.equal("redis://10.0.0.5:6380/2", t.display)
    t = assert(redis_store.parse_url("redis://alice:pw@[::1]"))
    assert.same({ "::1", 6379, "alice", "pw", "redis://[::1]:6379" }, { t.host, t.port, t.user, t.password, t.display })
    t = assert(redis_store.parse_url("unix:///run/redis/redis.sock"))
    assert.equal("/run/redis/redis.sock", t.path)
    for _, bad in ipairs({ "http://:" .. PASSWORD .. "@h", "redis://:" .. PASSWORD .. "@h:99999",
      "redis://" .. PASSWORD .. "@h", "unix://relative", "redis://", 42 }) do
      local s, err = redis_store.new(bad)
      assert.is_nil(s)
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.is_nil(tostring(err):find(PASSWORD, 1, true))
    end
    local _, err = redis_store.new(srv.url, { on_failure = "retry" })
    assert.equal("on_failure", err.field)
    _, err = redis_store.new(srv.url, { fleet_size = 0 })
    assert.equal("fleet_size", err.field)
    _, err = redis_store.new(srv.url, { fleetsize = 2 })
    assert.equal("fleetsize", err.field)
  end)

  it("knows its script's SHA-1, which is what the server calls it", function()
    assert.equal(hex(digest.new("sha1"):final(redis_store.SCRIPT)), redis_store.SCRIPT_SHA)
    assert.equal(redis_store.SCRIPT_SHA, srv:command("SCRIPT", "LOAD", redis_store.SCRIPT))
  end)

  it("spaces reservations evenly on the server's clock, whatever `now` the caller passes", function()
    local a, b = new(), new() -- two connections, as two processes would have
    local waits, before, after = {}, {}, {}
    for i = 1, 6 do
      -- nonsense clocks: the store reads Redis's TIME, not this
      local s = (i % 2 == 0) and a or b
      before[i] = core.now()
      waits[i] = assert(s:reserve("even", 0.05, i * 1000, math.huge))
      after[i] = core.now()
    end
    assert.equal(0, waits[1])
    -- Slot i is one interval after slot i - 1, on Redis's clock: it ran each script between `before` and
    -- `after` (however slow a loaded machine made the round trip), so the slots lie within these bounds.
    for i = 2, 6 do
      local earliest = before[i] + waits[i] - (after[1] + waits[1])
      local latest = after[i] + waits[i] - (before[1] + waits[1])
      assert.is_true(earliest <= (i - 1) * 0.05 + 1e-6 and latest >= (i - 1) * 0.05 - 1e-6,
        string.format("slot %d: %.6f..%.6f s after the first", i, earliest, latest))
      assert.is_true(waits[i] > 0 and waits[i] <= (i - 1) * 0.05 + 1e-6, "wait " .. waits[i])
    end
    -- another key has its own budget
    assert.equal(0, a:reserve("other", 0.05, 0, math.huge))
    a:close()
    b:close()
  end)

  it("reserves nothing when the wait would exceed max_wait", function()
    local s = new()
    assert.equal(0, s:reserve("mw", 1, 0, 0))
    local w, needed = s:reserve("mw", 1, 0, 0.5)
    assert.is_nil(w)
    assert.is_true(needed > 0.9 and needed <= 1, "needed " .. tostring(needed))
    -- nothing was reserved: the next caller needs the same single interval
    local w2 = assert(s:reserve("mw", 1, 0, math.huge))
    assert.is_true(w2 > 0.9 and w2 <= 1 and w2 <= needed, "wait " .. w2)
    s:close()
  end)

  it("keeps working when the script is flushed from the server", function()
    local s = new()
    assert(s:reserve("flush", 0.001, 0, math.huge))
    assert.equal("OK", srv:command("SCRIPT", "FLUSH"))
    assert.equal(0, srv:command("SCRIPT", "EXISTS", redis_store.SCRIPT_SHA)[1])
    assert(s:reserve("flush", 0.001, 0, math.huge))
    assert.equal(1, srv:command("SCRIPT", "EXISTS", redis_store.SCRIPT_SHA)[1])
    s:close()
  end)

  it("uses the database of the URL and the key prefix", function()
    local s = new({ prefix = "pfx:" }, srv.url .. "/3")
    assert(s:reserve("db3", 1, 0, math.huge))
    assert.is_true(srv:command("PTTL", "pfx:db3") == -2) -- not in database 0
    s:close()
  end)

  it("reaches a server over its unix socket", function()
    local s = new(nil, srv.unix_url)
    assert.equal(0, s:reserve("unix", 1, 0, math.huge))
    assert.is_nil(s:reserve("unix", 1, 0, 0))
    s:close()
  end)

  describe("when Redis fails", function()
    it("falls back to rate / fleet_size in this process, logging once per outage, and comes back", function()
      local records = {}
      local dead = new({ fleet_size = 4, logger = function(r) records[#records + 1] = r end },
        "redis://127.0.0.1:" .. util.dead_port())
      local now = 100
      assert.equal(0, dead:reserve("k", 0.05, now, math.huge))
      -- the local share: 4 times the interval
      assert.near(0.2, dead:reserve("k", 0.05, now, math.huge), 1e-9)
      assert.near(0.4, dead:reserve("k", 0.05, now, math.huge), 1e-9)
      assert.equal(1, #records)
      assert.equal("rate_limit_store_down", records[1].event)
      assert.truthy(records[1].error:find("refused"))
      assert.truthy(tostring(dead):find("down", 1, true))
      dead:close()
    end)

    it("is back on Redis within a second of the server returning", function()
      local own = redis.start()
      local ok, e = pcall(function()
        local records = {}
        local s = new({ logger = function(r) records[#records + 1] = r end }, own.url)
        assert.equal(0, s:reserve("back", 0.01, core.now(), math.huge))
        own:kill()
        assert(s:reserve("back", 0.01, core.now(), math.huge))
        assert.is_true(s.down)
        own:restart()
        local back_at = core.now()
        util.wait_for("the store to use Redis again", function()
          s:reserve("back", 0.01, core.now(), math.huge)
          return not s.down
        end, 2)
        assert.is_true(core.now() - back_at < 1, "took " .. (core.now() - back_at))
        -- the reservation went to the new server
        assert.is_true(own:command("PTTL", "tciot-rl:back") > 0)
        assert.same({ "rate_limit_store_down", "rate_limit_store_up" }, { records[1].event, records[2].event })
        assert.equal(2, #records)
        s:close()
      end)
      own:stop()
      assert(ok, e)
    end)

    it("gives up on a server that does not answer after the timeout, and tries again later", function()
      -- accepts connections (the kernel's backlog) and never answers
      local mute = assert(socket.bind("127.0.0.1", 0))
      local _, port = mute:getsockname()
      local s = new({ timeout = 0.1, logger = function() end }, "redis://127.0.0.1:" .. port)
      local t0 = core.now()
      assert.equal(0, s:reserve("k", 0.05, t0, math.huge))
      local took = core.now() - t0
      assert.is_true(took >= 0.09 and took < 1, "took " .. took)
      -- within the retry interval no new attempt: the fallback answers at once
      t0 = core.now()
      assert(s:reserve("k", 0.05, t0, math.huge))
      assert.is_true(core.now() - t0 < 0.05)
      mute:close()
      s:close()
    end)

    it("with on_failure = \"error\" the client returns RateLimiterUnavailable and sends nothing", function()
      local emu = emulator.start()
      local ok, e = pcall(function()
        local store = new({ on_failure = "error", logger = function() end },
          "redis://:" .. PASSWORD .. "@127.0.0.1:" .. util.dead_port())
        local c = assert(iot.new{ region = "ap-guangzhou", endpoint = emu.url, secret_id = emu.secret_id,
          secret_key = emu.secret_key, metadata_endpoint = false, rate_limit_store = store })
        local res, err = c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
        assert.is_nil(res)
        assert.equal("ClientError.RateLimiterUnavailable", err.code)
        assert.is_false(err.sent)
        assert.is_false(err.retryable)
        assert.equal(0, err.attempts)
        assert.is_nil(tostring(err):find(PASSWORD, 1, true))
        assert.equal(0, emu:counters().requests)
        c:close()
      end)
      emu:stop()
      assert(ok, e)
    end)
  end)

  describe("with requirepass", function()
    local locked

    setup(function()
      locked = redis.start{ password = PASSWORD }
    end)

    teardown(function()
      if locked then locked:stop() end
    end)

    it("authenticates with the right password, over TCP and the unix socket", function()
      for _, url in ipairs({ locked.url, locked.unix_url }) do
        local s = new(nil, url)
        assert.is_true(s:check())
        assert.equal(0, s:reserve("auth:" .. url:sub(1, 4), 1, 0, math.huge))
        assert.is_nil(tostring(s):find(PASSWORD, 1, true))
        s:close()
      end
    end)

    it("says the password was refused, never what it was", function()
      local wrong = "wr0ng-" .. PASSWORD
      local records = {}
      local urls = { "redis://:" .. wrong .. "@127.0.0.1:" .. locked.port, "redis://127.0.0.1:" .. locked.port }
      for _, url in ipairs(urls) do
        local s = new({ on_failure = "error", logger = function(r) records[#records + 1] = r end }, url)
        local ok, err = s:check()
        assert.is_nil(ok)
        assert.equal("ClientError.RateLimiterUnavailable", err.code)
        assert.truthy(err.message:find("WRONGPASS") or err.message:find("NOAUTH"), err.message)
        local w, needed, rerr = s:reserve("k", 1, 0, math.huge)
        assert.is_nil(w)
        assert.is_nil(needed)
        assert.equal("ClientError.RateLimiterUnavailable", rerr.code)
        for _, text in ipairs({ tostring(err), tostring(rerr), tostring(s) }) do
          assert.is_nil(text:find(PASSWORD, 1, true), text)
        end
        s:close()
      end
      assert.equal(2, #records)
      for _, r in ipairs(records) do
        for _, v in pairs(r) do assert.is_nil(tostring(v):find(PASSWORD, 1, true)) end
      end
    end)
  end)

  describe("connection (src/redis.c)", function()
    it("turns replies into Lua values and error replies into nil, message, \"reply\"", function()
      local c = assert(redis_core.connect{ host = "127.0.0.1", port = srv.port })
      assert.equal("PONG", c:command("PING"))
      assert.equal("OK", c:command("SET", "rc:k", 42))
      assert.equal("42", c:command("GET", "rc:k"))
      assert.equal(43, c:command("INCR", "rc:k"))
      assert.is_false(c:command("GET", "rc:missing"))
      assert.same({ "a", 1, false }, c:command("EVAL", "return {'a', 1, false}", "0"))
      local v, err, kind = c:command("NOSUCHCOMMAND")
      assert.is_nil(v)
      assert.truthy(err:find("unknown command"))
      assert.equal("reply", kind)
      assert.equal("PONG", c:command("PING")) -- still usable
      assert.equal("redis connection (open)", tostring(c))
      c:close()
      v, err, kind = c:command("PING")
      assert.same({ nil, "the connection is closed", "io" }, { v, err, kind })
      assert.has_error(function() c:command() end)
      assert.has_error(function() c:command({}) end)
    end)

    it("reports a refused connection and a dropped one", function()
      local c, err = redis_core.connect{ host = "127.0.0.1", port = util.dead_port() }
      assert.is_nil(c)
      assert.truthy(err:find("refused"), err)
      c = assert(redis_core.connect{ host = "127.0.0.1", port = srv.port })
      local id = c:command("CLIENT", "ID")
      srv:command("CLIENT", "KILL", "ID", id)
      local v, _, kind = c:command("PING")
      assert.is_nil(v)
      assert.equal("io", kind)
      assert.is_false(c:is_open())
    end)
  end)
end)

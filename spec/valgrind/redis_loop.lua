-- make test-valgrind: the Redis connection module (src/redis.c) under memcheck, through every path: connect
-- and close, replies of each type, error replies, a server that drops the connection, one that never
-- answers (timeout), a refused connection, bad arguments (raised), and the store on top of it. A plain script,
-- like loop.lua; redis-server runs natively in its own process.
--   lua5.4 spec/valgrind/redis_loop.lua [rounds]      (default 2000, or $TCIOT_VALGRIND_REDIS_ROUNDS)
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("TCIOT_CPATH") or "build/lua5.4/?.so") .. ";" .. package.cpath

local redis_core = require("tencentcloud.iotexplorer.redis_core")
local redis_store = require("tencentcloud.iotexplorer.redis_store")
local socket = require("socket")
local redis = require("helpers.redis")
local util = require("helpers.util")

local rounds = tonumber(arg[1] or os.getenv("TCIOT_VALGRIND_REDIS_ROUNDS") or 2000)
local srv = redis.start{ password = "valgrind-pw" }
local mute = assert(socket.bind("127.0.0.1", 0)) -- accepts (backlog), never answers
local _, mute_port = mute:getsockname()
local dead_port = util.dead_port()

local function fail(what)
  srv:stop()
  io.stderr:write(what, "\n")
  os.exit(1)
end

local function check(cond, what) if not cond then fail(what) end end

local started = os.time()
local conn
for i = 1, rounds do
  if i % 100 == 1 then
    if conn then conn:close() end
    conn = assert(redis_core.connect{ host = "127.0.0.1", port = srv.port, timeout = 2 })
    check(conn:command("AUTH", "valgrind-pw") == "OK", "AUTH")
  end
  check(conn:command("SET", "vg:" .. (i % 10), string.rep("x", i % 300)) == "OK", "SET")
  check(#conn:command("GET", "vg:" .. (i % 10)) == i % 300, "GET")
  local arr = conn:command("EVAL", "return {1, 'two', {3, {4}}, false}", "0")
  check(type(arr) == "table" and arr[3][2][1] == 4, "nested array")
  local v, err, kind = conn:command("NOSUCH", i)
  check(v == nil and kind == "reply" and err:find("unknown"), "error reply")
  if i % 50 == 0 then
    -- raised inside the module, with a connection open
    check(not pcall(conn.command, conn, {}), "bad argument not refused")
    check(not pcall(conn.command, conn), "no argument not refused")
    check(not pcall(redis_core.connect, { host = "127.0.0.1", port = 0 }), "bad port not refused")
  end
  if i % 200 == 0 then
    -- the server drops a connection: an I/O error, the context is freed
    local victim = assert(redis_core.connect{ host = "127.0.0.1", port = srv.port })
    assert(victim:command("AUTH", "valgrind-pw"))
    local id = victim:command("CLIENT", "ID")
    assert(conn:command("CLIENT", "KILL", "ID", id))
    v, _, kind = victim:command("PING")
    check(v == nil and kind == "io", "dropped connection")
    victim = nil -- luacheck: ignore 311
    -- refused, a unix socket, a timeout
    check(redis_core.connect{ host = "127.0.0.1", port = dead_port } == nil, "refused")
    local u = assert(redis_core.connect{ path = srv.socket })
    check(u:command("PING") == nil, "NOAUTH over the unix socket")
    u = nil -- luacheck: ignore 311
    local m = redis_core.connect{ host = "127.0.0.1", port = mute_port, timeout = 0.02 }
    if m then
      v, _, kind = m:command("PING")
      check(v == nil and kind == "io", "timeout")
    end
    collectgarbage()
    -- the store: reservations, a flushed script, a wrong password
    local store = assert(redis_store.new("redis://:valgrind-pw@127.0.0.1:" .. srv.port))
    for _ = 1, 20 do assert(store:reserve("vg", 1e-6, 0, math.huge)) end
    assert(conn:command("SCRIPT", "FLUSH"))
    assert(store:reserve("vg", 1e-6, 0, math.huge))
    store:close()
    local wrong = assert(redis_store.new("redis://:nope@127.0.0.1:" .. srv.port,
      { on_failure = "error", logger = function() end }))
    check(select(3, wrong:reserve("vg", 1, 0, math.huge)) ~= nil, "wrong password accepted")
  end
end
conn:close()
mute:close()
srv:stop()
collectgarbage()
print(string.format("valgrind redis loop: %d rounds in %d s", rounds, os.time() - started))

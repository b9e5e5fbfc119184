-- Secrets: a recognisable secret key and token (helpers/secrets.lua) must never appear in an error
-- message, tostring(err), tostring(client), a logger record (walked deeply) or `tciot --verbose` output.
--   - faults_spec.lua and hostile_spec.lua run their whole matrices with these credentials and end with the
--     same check; this file adds the cases made to provoke a leak: a server that echoes the key and token
--     back, credentials refused for their form, a provider that fails, and tciot --verbose through faults and
--     hostile arguments.
--   - The core wipes the key from its own buffers when a session is closed: a child process's memory is
--     searched (from this process, through /proc/PID/mem) before and after close.
local iot = require("tencentcloud.iotexplorer")
local credentials = require("tencentcloud.iotexplorer.credentials")
local emulator = require("helpers.emulator")
local secrets = require("helpers.secrets")
local util = require("helpers.util")

local KEY, TOKEN, ID = secrets.SECRET_KEY, secrets.TOKEN, secrets.SECRET_ID
local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local ROOT = util.ROOT

local shell_quote, read_file, write_file, dead_port = util.shell_quote, util.read_file, util.write_file,
  util.dead_port

describe("secrets", function()
  local emu, watch, work
  local watches = {}   -- one watcher per test, so that a leak fails the test that caused it

  local function new(o)
    o = o or {}
    local base = secrets.credentials{
      region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false, rate_limit = false,
      timeout = 1, connect_timeout = 1, max_attempts = 3, backoff_base = 0.01, backoff_cap = 0.02,
      logger = watch:logger(),
    }
    for k, v in pairs(o) do
      -- false removes one of our credentials (to test what happens without it)
      if v == false and (k == "secret_id" or k == "secret_key" or k == "token") then base[k] = nil else base[k] = v end
    end
    local c, err = iot.new(base)
    watch:see(c, err)
    if c then watch:see(tostring(c)) end
    return c, err
  end

  setup(function()
    emu = emulator.start{ fixture = secrets.fixture() }
    work = util.tmpdir()
  end)

  teardown(function()
    if emu then emu:stop() end
    util.rm_rf(work)
  end)

  before_each(function()
    emu:reset()
    watch = secrets.watch()
    watches[#watches + 1] = watch
  end)

  it("the credentials work (so every other test here really signed with them)", function()
    local c = assert(new())
    local res, err = c:describe_batch_production(DESCRIBE)
    watch:see(res, err, c)
    assert.is_nil(err)
    assert.equal(3, res.BatchCnt)
    assert.equal(TOKEN, emu:counters().last_headers["x-tc-token"])
    c:close()
    watch:see(c, tostring(c))
    watch:assert_clean()
  end)

  describe("a server that echoes the key and token back", function()
    local echo = "key " .. KEY .. " token " .. TOKEN .. " again " .. KEY .. TOKEN
    local CASES = {
      { "in an API error's message and RequestId", { kind = "raw", status = 200,
        headers = { ["Content-Type"] = "application/json" },
        body = '{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"' .. echo
          .. '"},"RequestId":"' .. KEY .. '"}}' } },
      { "in a retried InternalError, every attempt", { kind = "raw", status = 503, count = 0,
        body = '{"Response":{"Error":{"Code":"InternalError","Message":"' .. echo .. '"},"RequestId":"r-'
          .. TOKEN .. '"}}' } },
      { "in the Code itself", { kind = "raw", status = 200,
        body = '{"Response":{"Error":{"Code":"' .. KEY .. '","Message":"m"},"RequestId":"r"}}' } },
      { "in an HTML page with status 502", { kind = "raw", status = 502, count = 0,
        headers = { ["Content-Type"] = "text/html" }, body = "<html><body>" .. echo .. "</body></html>" } },
      { "in an HTML page with status 200", { kind = "raw", status = 200,
        headers = { ["Content-Type"] = "text/html" }, body = "<html><body>" .. echo .. "</body></html>" } },
      { "in a Location header of a redirect", { kind = "raw", status = 302,
        headers = { Location = "http://127.0.0.1:1/?k=" .. KEY }, body = echo } },
      { "in a truncated body", { kind = "raw", status = 200,
        headers = { ["Content-Type"] = "application/json", ["Content-Length"] = "100000" },
        body = '{"Response":{"Error":{"Code":"InternalError","Message":"' .. echo } },
      { "in malformed JSON", { kind = "raw", status = 200, body = '{"Response":{"Message":"' .. echo } },
      { "in a body over the cap", { kind = "raw", status = 200, body = string.rep(echo, 200) } },
    }
    for _, case in ipairs(CASES) do
      it(case[1] .. ": nothing the client returns or logs holds them", function()
        local c = assert(new{ max_response_bytes = 4096 })
        emu:fault(case[2])
        local res, err = c:describe_batch_production(DESCRIBE, { deadline = 3 })
        watch:see(res, err, tostring(err), c)
        assert.is_nil(res)
        assert.is_true(iot.is_error(err))
        c:close()
        watch:assert_clean()
      end)
    end
  end)

  describe("credentials refused for their form never quote them", function()
    local BAD = {
      { "a key with a leading space", { secret_key = " " .. KEY } },
      { "a key with a trailing newline", { secret_key = KEY .. "\n" } },
      { "a key holding a control character", { secret_key = KEY:sub(1, 10) .. "\1" .. KEY:sub(11) } },
      { "a token with a trailing space", { token = TOKEN .. " " } },
      { "a token holding CR LF", { token = TOKEN .. "\r\nX-Smuggled: 1" } },
      { "a key without an id", { secret_id = false, secret_key = KEY } },
      { "a key of the wrong type next to a token", { secret_key = { KEY }, token = TOKEN } },
      { "a key and a provider", { credential_provider = function() return ID, KEY, TOKEN end } },
    }
    for _, case in ipairs(BAD) do
      it("given to iot.new: " .. case[1], function()
        local c, err = new(case[2])
        if c then c:close() end
        assert.is_nil(c)
        assert.is_true(iot.is_error(err))
        watch:assert_clean()
      end)
    end

    it("from the environment and from a profile file", function()
      local env = {
        TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY .. " ", TENCENTCLOUD_SESSION_TOKEN = TOKEN,
      }
      local chain, err = credentials.new{ getenv = function(k) return env[k] end, metadata_endpoint = false }
      watch:see(chain, err)
      assert.is_nil(chain)
      env.TENCENTCLOUD_SECRET_KEY, env.TENCENTCLOUD_SESSION_TOKEN = KEY, TOKEN .. "\t"
      chain, err = credentials.new{ getenv = function(k) return env[k] end, metadata_endpoint = false }
      watch:see(chain, err)
      assert.is_nil(chain)
      local file = work .. "/credentials"
      write_file(file, "[default]\nsecret_id = " .. ID .. "\nsecret_key = " .. KEY .. "\1\ntoken = " .. TOKEN .. "\n"
        .. "[half]\nsecret_key = " .. KEY .. "\n")
      for _, profile in ipairs{ "default", "half", "missing" } do
        chain, err = credentials.new{ getenv = function() return nil end, files = { file }, profile = profile,
          metadata_endpoint = false }
        watch:see(chain, err)
        assert.is_nil(chain)
      end
      watch:assert_clean()
    end)

    it("from a provider that returns bad values or fails", function()
      for _, provider in ipairs{
        function() return ID, " " .. KEY, TOKEN end,
        function() return ID, KEY, TOKEN .. "\n" end,
        function() return ID, KEY, TOKEN, "tomorrow" end,
        function() return nil, "the vault is sealed" end,
        function() error("the vault is sealed") end,
      } do
        local c = assert(new{ secret_id = false, secret_key = false, token = false, credential_provider = provider })
        local res, err = c:describe_batch_production(DESCRIBE)
        watch:see(res, err, c)
        assert.is_nil(res)
        assert.equal("ClientError.CredentialError", err.code)
        c:close()
      end
      watch:assert_clean()
    end)

    it("nor do AuthFailures from the server (a wrong token, a wrong key, a missing token)", function()
      for _, o in ipairs{ { token = TOKEN:upper() }, { secret_key = KEY:lower() }, { token = false } } do
        local c = assert(new(o))
        local res, err = c:describe_batch_production(DESCRIBE)
        watch:see(res, err, c)
        assert.is_nil(res)
        assert.matches("^AuthFailure", err.code)
        c:close()
      end
      watch:assert_clean()
    end)
  end)

  describe("tciot --verbose", function()
    local TOOL = ROOT .. "/bin/tciot"
    local has_tool = read_file(TOOL) ~= nil

    -- Runs tciot with our credentials in a clean environment; returns stdout .. stderr and the exit code.
    local function tciot(args, env_extra)
      local env = {
        PATH = "/usr/local/bin:/usr/bin:/bin", HOME = work, LANG = "C",
        TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY, TENCENTCLOUD_SESSION_TOKEN = TOKEN,
        TENCENTCLOUD_REGION = "ap-guangzhou",
      }
      for k, v in pairs(env_extra or {}) do env[k] = v or nil end
      local words = { "env", "-i" }
      for k, v in pairs(env) do words[#words + 1] = shell_quote(k .. "=" .. v) end
      words[#words + 1] = util.INTERPRETER
      words[#words + 1] = shell_quote(TOOL)
      for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
      local out, err = work .. "/tciot.out", work .. "/tciot.err"
      local _, _, rc = util.run(table.concat(words, " ") .. " </dev/null >" .. shell_quote(out) .. " 2>"
        .. shell_quote(err))
      local text = (read_file(out) or "") .. (read_file(err) or "")
      return text, rc, read_file(err) or ""
    end

    -- DescribeBatchProduction of the documented batch; `with` replaces a parameter's value.
    local function describe_args(with)
      with = with or {}
      return { "--verbose", "--endpoint", emu.url, "--timeout", "0.5", "DescribeBatchProduction",
        "--ProductId", with.ProductId or "R32ONVL0EU", "--BatchProductionId", with.BatchProductionId or "LC-ya6zinv9" }
    end

    -- A selection of the fault matrix: each kind of failure once (the client's own matrix is in faults_spec).
    local FAULTS = {
      { "no fault", nil, 0 },
      { "HTTP 503 once, then the result", { kind = "status", status = 503, count = 1 }, 0 },
      { "HTTP 503 every time", { kind = "status", status = 503, count = 0 }, 1 },
      { "a 502 HTML page every time", { kind = "html", status = 502, count = 0 }, 1 },
      { "a reset mid-response", { kind = "reset", when = "headers", count = 0 }, 3 },
      { "a body cut short", { kind = "truncate", count = 0 }, 3 },
      { "an answer slower than the timeout", { kind = "delay", seconds = 1, count = 0 }, 3 },
      { "malformed JSON", { kind = "malformed_json" }, 1 },
      { "an empty body", { kind = "raw", status = 200, body = "" }, 1 },
      { "a redirect", { kind = "raw", status = 302, headers = { Location = "http://127.0.0.1:1/" } }, 1 },
      { "a server echoing the key and token", { kind = "raw", status = 200, body =
        '{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"' .. KEY .. " " .. TOKEN
        .. '"},"RequestId":"' .. KEY .. '"}}' }, 1 },
    }

    for _, case in ipairs(FAULTS) do
      it("through faults: " .. case[1], function()
        if not has_tool then
          pending("bin/tciot does not exist yet")
          return
        end
        for _, output in ipairs{ "json", "table" } do
          emu:reset()
          if case[2] then emu:fault(case[2]) end
          local args = describe_args()
          table.insert(args, 1, "--output")
          table.insert(args, 2, output)
          local text, rc, stderr = tciot(args)
          watch:text("tciot --verbose (" .. case[1] .. ", " .. output .. ")", text)
          assert.equal(case[3], rc, text)
          assert.truthy(stderr:find("tciot: DescribeBatchProduction attempt 1", 1, true), stderr)
        end
        watch:assert_clean()
      end)
    end

    it("with hostile arguments and bad credentials", function()
      if not has_tool then
        pending("bin/tciot does not exist yet")
        return
      end
      local function run(args, env, may_succeed)
        local text, rc = tciot(args, env)
        local shown = table.concat(args, " "):gsub("[^\32-\126]", "?"):sub(1, 200)
        for k, v in pairs(env or {}) do shown = k .. "=" .. (v and "<changed>" or "<unset>") .. " " .. shown end
        watch:text("tciot " .. shown, text)
        assert.is_number(rc)
        assert.is_true(rc >= (may_succeed and 0 or 1) and rc <= 3,
          "tciot " .. shown .. "\nexit code " .. tostring(rc) .. ": " .. text)
        return text
      end
      run(describe_args{ ProductId = "x\r\nX-Smuggled: 1" })
      run(describe_args{ ProductId = "x\xff\xfe" })
      run(describe_args{ ProductId = "" })
      run(describe_args{ BatchProductionId = string.rep("b", 100 * 1024) })
      run{ "--verbose", "--endpoint", "file:///etc/passwd", "DescribeBatchProduction", "--ProductId", "P",
        "--BatchProductionId", "B" }
      run{ "--verbose", "--endpoint", "http://127.0.0.1:" .. dead_port(), "DescribeBatchProduction",
        "--ProductId", "P", "--BatchProductionId", "B" }
      run{ "--verbose", "--region", "ap-guangzhou\r\nX-Smuggled: 1", "--endpoint", emu.url,
        "DescribeBatchProduction", "--ProductId", "P", "--BatchProductionId", "B" }
      -- CR LF inside a JSON string is escaped in the body: the server may well answer.
      run({ "--verbose", "--endpoint", emu.url, "call", "DescribeBatchProduction", "--param-json",
        '{"ProductId":"R32ONVL0EU","BatchProductionId":"LC-ya6zinv9","Extra":"\\r\\nX-Smuggled: 1"}' },
        nil, true)
      run{ "--verbose", "--endpoint", emu.url, "call", "DescribeBatchProduction", "--param-json", "{not json" }
      run(describe_args(), { TENCENTCLOUD_SECRET_KEY = KEY .. " " })
      run(describe_args(), { TENCENTCLOUD_SECRET_KEY = KEY:lower() })
      run(describe_args(), { TENCENTCLOUD_SESSION_TOKEN = TOKEN .. "\1" })
      run(describe_args(), { TENCENTCLOUD_SESSION_TOKEN = false })
      for k, v in pairs(emu:counters().last_headers or {}) do
        assert.falsy(tostring(k):lower():find("smuggled", 1, true), "smuggled header " .. k)
        assert.falsy(tostring(v):lower():find("smuggled", 1, true), "smuggled value in " .. k)
      end
      watch:assert_clean()
    end)
  end)

  describe("the core's buffers", function()
    -- A child process holds the key (its argv and one Lua string); we count the copies of the key in its
    -- anonymous memory (heap, stack, anonymous maps) through /proc/PID/mem: at rest, after a signed
    -- request (the session's signer keeps a copy for its key cache), and after the session is closed.
    local CHILD = [[
local core = require("tencentcloud.iotexplorer.core")
local iot = require("tencentcloud.iotexplorer")
local key, token, mode, endpoint = arg[1], arg[2], arg[3], arg[4]
local f = io.open("/proc/self/stat")
local pid = f:read("*l"):match("^(%d+)")
f:close()
local function step(name)
  collectgarbage("collect")
  collectgarbage("collect")
  io.stdout:write(name, " ", pid, "\n")
  io.stdout:flush()
  io.stdin:read("*l")
end
local s, c
if mode == "core" then
  local host, port = endpoint:match("^http://([^:/]+):(%d+)")
  s = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou",
    timeout = 1, connect_timeout = 1 })
else
  c = assert(iot.new{ region = "ap-guangzhou", endpoint = endpoint, secret_id = "AKIDHARDENING0SPEC0ID00000000000001",
    secret_key = key, token = token, metadata_endpoint = false, max_attempts = 1, rate_limit = false })
end
step("rest")
if s then
  local _, err = core.call(s, { secret_id = "AKIDHARDENING0SPEC0ID00000000000001",
    secret_key = key, token = token, action = "DescribeBatchProduction", version = "2019-04-23",
    params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } })
  assert(err and err.code == "ClientError.NetworkError")
else
  local _, err = c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
  assert(err and err.code == "ClientError.NetworkError")
end
step("signed")
if s then s:close() else c:close() end
step("closed")
]]

    -- The key from its 17th byte on: free() writes its list pointers over the first 16 bytes of a chunk, so
    -- a copy freed without being wiped loses its head but keeps this.
    local NEEDLE = KEY:sub(17)

    -- Counts the occurrences of needle in the anonymous readable memory of process pid.
    local function count_in_memory(pid, needle)
      local maps = assert(io.open("/proc/" .. pid .. "/maps")):read("*a")
      local mem = assert(io.open("/proc/" .. pid .. "/mem", "rb"))
      local n, scanned = 0, 0
      for line in maps:gmatch("[^\n]+") do
        local from, to, perms, path = line:match("^(%x+)-(%x+) (%S+) %S+ %S+ %S+%s*(.*)$")
        local anonymous = path == "" or path == "[heap]" or path == "[stack]" or path:find("^%[anon")
        if from and perms:sub(1, 1) == "r" and anonymous then
          local start, size = tonumber(from, 16), tonumber(to, 16) - tonumber(from, 16)
          if size <= 256 * 1024 * 1024 and mem:seek("set", start) then
            local data = mem:read(size)
            if data then
              scanned = scanned + #data
              local i = 1
              while true do
                local j = data:find(needle, i, true)
                if not j then break end
                n = n + 1
                i = j + 1
              end
            end
          end
        end
      end
      mem:close()
      return n, scanned
    end

    for _, mode in ipairs{ "core", "client" } do
      it("no copy of the key is left once the " .. (mode == "core" and "session" or "client") .. " is closed",
        function()
          local script = work .. "/wipe.lua"
          write_file(script, CHILD)
          local control = work .. "/wipe.fifo"
          os.remove(control)
          util.check_output("mkfifo " .. shell_quote(control))
          -- The child reads its steps from a FIFO we write to, and reports on the pipe we read.
          local cmd = "cd " .. shell_quote(ROOT) .. " && exec " .. util.lua_command(script,
            { KEY, TOKEN, mode, "http://127.0.0.1:" .. dead_port() }) .. " < " .. shell_quote(control)
          local child = assert(io.popen(cmd, "r"))
          local steer = assert(io.open(control, "w"))
          local counts = {}
          for _, step in ipairs{ "rest", "signed", "closed" } do
            local line = child:read("*l")
            assert(line, "the child stopped before '" .. step .. "'")
            local name, pid = line:match("^(%a+) (%d+)$")
            assert.equal(step, name)
            counts[step] = count_in_memory(pid, NEEDLE)
            steer:write("next\n")
            steer:flush()
          end
          steer:close()
          child:close()
          os.remove(control)
          local seen = string.format("copies of the key: %d at rest, %d after signing, %d after close",
            counts.rest, counts.signed, counts.closed)
          if os.getenv("TCIOT_SPEC_REPORT") then io.stderr:write("\n" .. mode .. ": " .. seen .. "\n") end
          assert(counts.rest >= 1, "the search finds nothing, not even the child's own copy: " .. seen)
          if mode == "core" then
            -- The signer's cached copy shows while the session is open: the search does see it...
            assert(counts.signed > counts.rest, "the signer's copy was not found: " .. seen)
          end
          -- ...and it is gone, wiped and not merely freed, once the session is closed.
          assert(counts.closed <= counts.rest, "the key outlived close: " .. seen)
        end)
    end
  end)

  it("no secret key or token anywhere in this file's errors, clients and records", function()
    local checked = 0
    for _, w in ipairs(watches) do checked = checked + w:assert_clean() end
    assert(checked > 1000, "only " .. checked .. " values were checked")
  end)
end)

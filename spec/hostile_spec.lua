-- Hostile input: every field of iot.new, every parameter of the client's methods, and every field
-- of core.sign and of the core's request tables, tried with nil, numbers, booleans, tables, functions,
-- coroutines, empty strings, 10 MB strings, embedded NUL, CR/LF (header injection) and non-UTF-8 bytes.
--   - The Lua client returns an error object naming the field (err.field, or the field's name in the
--     message), never raises.
--   - The core returns nil, err (err.field for ClientError.InvalidParameter); it raises only when its first
--     argument is not a table or a session.
--   - Nothing crashes, and no request ever reaches the emulator with a header a caller smuggled in.
--   - Endpoints other than http:// and https:// are refused.
-- The cases are generated from two tables: VALUES (what to try) and the fields of each entry point with
-- the values each must accept. A value a field does not list must be refused.
local iot = require("tencentcloud.iotexplorer")
local core = require("tencentcloud.iotexplorer.core")
local emulator = require("helpers.emulator")
local secrets = require("helpers.secrets")
local util = require("helpers.util")

local BIG = string.rep("a", 10 * 1024 * 1024)
local MARK = "X-Smuggled"
local raising = function() error("a hostile metamethod ran") end

-- id, description, value. A nil value means the field is absent.
local VALUES = {
  { "nil", "nil (absent)", nil },
  { "n42", "the number 42", 42 },
  { "neg", "the number -1", -1 },
  { "nan", "NaN", 0 / 0 },
  { "inf", "infinity", math.huge },
  { "true", "true", true },
  { "false", "false", false },
  { "table", "a table", {} },
  { "func", "a function", function() end },
  { "thread", "a coroutine", coroutine.create(function() end) },
  { "empty", "an empty string", "" },
  { "big", "a 10 MB string", BIG },
  { "nul", "an embedded NUL", "ok\0" .. MARK .. ": 1" },
  { "crlf", "CR LF and a header", "ok\r\n" .. MARK .. ": 1" },
  { "lf", "a bare LF and a header", "ok\n" .. MARK .. ": 1" },
  { "cr", "a bare CR and a header", "ok\r" .. MARK .. ": 1" },
  { "bytes", "non-UTF-8 bytes", "ok\xff\xfe\xc3(\xed\xa0\x80" },
}

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- What a field accepts. `ok`: values that must work; `maybe`: values that may be refused or accepted (a
-- 10 MB key is odd but not wrong); anything else must be refused, naming the field.
local function field(name, ok, maybe, extra)
  local f = { name = name, ok = set(ok or {}), maybe = set(maybe or {}) }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

-- Header names a request may carry: anything else got there by injection.
local ALLOWED_HEADERS = set{
  "authorization", "content-type", "host", "x-tc-action", "x-tc-version", "x-tc-timestamp", "x-tc-region",
  "x-tc-token", "x-tc-language", "x-tc-requestclient", "user-agent", "accept", "content-length",
  "accept-encoding", "connection",
}

-- Control and non-ASCII bytes as \ddd, so that reports stay readable text.
local function printable(s)
  return (tostring(s):gsub("[^\32-\126]", function(c) return string.format("\\%d", c:byte()) end))
end

local function describe_value(v)
  if type(v) == "string" then
    return "string " .. (#v > 40 and (#v .. " bytes") or ('"' .. printable(v) .. '"'))
  end
  return type(v) .. " " .. tostring(v)
end

-- Returns a problem (string) or nil. `err` must name `name` (err.field, or the name in the message).
local function names(err, field_names)
  for _, n in ipairs(field_names) do
    if err.field == n then return true end
    if type(err.message) == "string" and err.message:find(n, 1, true) then return true end
  end
  return false
end

describe("hostile input", function()
  local emu, watch, session, smuggled = nil, nil, nil, {}
  local requests_seen = 0

  -- Checks what reached the emulator since the last look: no header outside the allowed set, no value
  -- holding the injected header. Returns the number of new requests.
  local function check_wire(where)
    local c = emu:counters()
    local new = c.requests - requests_seen
    requests_seen = c.requests
    if new > 0 then
      for k, v in pairs(c.last_headers or {}) do
        if not ALLOWED_HEADERS[k] or tostring(k):lower():find("smuggled", 1, true)
          or tostring(v):lower():find("smuggled", 1, true) then
          smuggled[#smuggled + 1] = where .. ": header " .. tostring(k) .. " reached the server"
        end
      end
    end
    return new
  end

  local function client_options(extra)
    local o = secrets.credentials{
      region = "ap-guangzhou", endpoint = emu.url, metadata_endpoint = false, rate_limit = false,
      timeout = 2, connect_timeout = 1, max_attempts = 1, backoff_base = 0.01, backoff_cap = 0.02,
      logger = watch:logger(),
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  setup(function()
    emu = emulator.start{ fixture = secrets.fixture() }
    watch = secrets.watch()
    local host, port = emu.url:match("^http://([^:/]+):(%d+)")
    session = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou",
      timeout = 3, connect_timeout = 1 })
  end)

  teardown(function()
    if session then session:close() end
    if emu then emu:stop() end
  end)

  -- One verdict for a client result. `res_ok` is true when the call returned without raising and with a
  -- non-nil first value. Returns a problem or nil.
  local function judge_client(f, v, raised, res, err, field_names)
    if raised then return "raised: " .. tostring(res) end
    local id = v[1]
    if res ~= nil and res ~= false then
      if f.ok[id] or f.maybe[id] then return nil end
      return "accepted " .. describe_value(v[3]) .. " (must be refused)"
    end
    if not iot.is_error(err) then return "returned " .. tostring(res) .. ", " .. tostring(err) end
    if f.ok[id] then
      -- A valid value may still meet an error from the server (e.g. 42 s is a fine timeout); only an
      -- input error about this very field is wrong.
      if err.code == "ClientError.InvalidParameter" and names(err, field_names) then
        return "refused a valid value: " .. tostring(err)
      end
      return nil
    end
    if f.maybe[id] and err.code ~= "ClientError.InvalidParameter" and err.code ~= "ClientError.CredentialError" then
      return nil  -- accepted, then failed further on (a 10 MB header, a proxy that does not parse, ...)
    end
    if not names(err, field_names) then return "the error does not name the field: " .. tostring(err) end
    if err.sent ~= false and err.code == "ClientError.InvalidParameter" then return "refused after sending" end
    return nil
  end

  ---------------------------------------------------------------------------------------------------
  describe("iot.new", function()
    local FIELDS = {
      field("secret_id", {}, { "big" }),
      field("secret_key", {}, { "big", "bytes" }),
      field("token", { "nil" }, { "empty", "big" }),
      field("profile", { "nil" }, { "empty", "big", "bytes" }),
      field("region", {}, { "big" }),               -- a-z only passes the form check; the call refuses it
      field("endpoint", { "nil" }, {}, { no_call = { ["nil"] = true } }),  -- nil: the real service
      field("timeout", { "nil", "n42" }),
      field("connect_timeout", { "nil", "n42" }),
      field("max_attempts", { "nil", "n42" }),
      field("backoff_base", { "nil", "n42" }),
      field("backoff_cap", { "nil", "n42" }),
      field("rate_limit", { "nil", "n42", "false" }),
      field("rate_limit_store", { "nil" }),
      field("rate_limit_key", { "nil" }, { "big", "bytes" }),
      field("language", { "nil" }),
      field("proxy", { "nil" }, { "big", "bytes" }),
      field("ca_file", { "nil" }, { "big", "bytes" }),
      field("ca_path", { "nil" }, { "big", "bytes" }),
      field("logger", { "nil", "func" }),
      field("sleep", { "nil", "func" }),
      field("credential_provider", { "nil" }, { "func" }),   -- with secret_id/secret_key: "give either"
      field("metadata_endpoint", { "nil", "false" }),
      field("max_response_bytes", { "nil", "n42" }),
      field("nginx", { "nil", "true", "false" }),      -- outside nginx: nothing to set up, but still a boolean
      field("secretId", { "nil" }),                    -- a typo: unknown options are refused
    }

    for _, f in ipairs(FIELDS) do
      it(f.name .. " with every kind of value", function()
        local problems = {}
        for _, v in ipairs(VALUES) do
          local o = client_options()
          o[f.name] = v[3]
          local ok, c, err = pcall(iot.new, o)
          local raised = not ok
          watch:see(c, err)
          local problem = judge_client(f, v, raised, c, err, { f.name })
          if not problem and c and not (f.no_call and f.no_call[v[1]]) then
            -- The client works or fails cleanly, and sends nothing smuggled.
            local cok, res, cerr = pcall(c.describe_batch_production, c, { ProductId = "R32ONVL0EU",
              BatchProductionId = "LC-ya6zinv9" }, { deadline = 2 })
            watch:see(res, cerr)
            if not cok then problem = "the client's call raised: " .. tostring(res)
            elseif res == nil and not iot.is_error(cerr) then problem = "the call returned no error object"
            elseif res == nil and cerr.code == "ClientError.InvalidParameter" and cerr.field ~= f.name
              and not (f.name == "region" and cerr.field == "region") then
              problem = "the call refused another field: " .. tostring(cerr)
            end
            c:close()
          end
          check_wire("iot.new " .. f.name .. " = " .. v[2])
          if problem then problems[#problems + 1] = v[2] .. ": " .. printable(problem) end
        end
        assert(#problems == 0, f.name .. ":\n  " .. table.concat(problems, "\n  "))
      end)
    end

    it("refuses options that are not a table, naming them", function()
      for _, v in ipairs(VALUES) do
        if v[1] ~= "nil" and v[1] ~= "table" then
          local ok, c, err = pcall(iot.new, v[3])
          assert(ok, "iot.new raised for " .. v[2])
          assert.is_nil(c)
          assert.is_true(iot.is_error(err))
          assert.equal("options", err.field)
        end
      end
    end)

    it("does not raise for an options table whose metamethods raise", function()
      local hostile = setmetatable({ region = "ap-guangzhou" }, { __index = raising, __newindex = raising,
        __pairs = raising, __len = raising, __tostring = raising })
      local ok, c, err = pcall(iot.new, hostile)
      assert(ok, "iot.new raised: " .. tostring(c))
      if c then c:close() else assert.is_true(iot.is_error(err)) end
    end)
  end)

  ---------------------------------------------------------------------------------------------------
  describe("the client's methods", function()
    local client
    before_each(function()
      client = client or assert(iot.new(client_options()))
    end)
    teardown(function()
      if client then client:close() end
    end)

    local DESCRIBE = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
    local CREATE = { ProjectId = "PROJECT0001", ProductId = "EMULPROD02", BurnMethod = 0, GenerationMethod = 0,
      BatchCnt = 1 }
    local LIST = { ProjectId = "PROJECT0001", Limit = 5 }

    -- Any value the JSON encoder takes may go into a parameter the client does not know; the rest must
    -- be refused (the error names the parameter, or `params`).
    local EXTRA = field("Extra", { "nil", "n42", "neg", "true", "false", "table", "empty", "big", "nul", "crlf", "lf",
      "cr", "bytes" }, {}, { names = { "Extra", "params" } })

    local STRING_PARAM = function(name, ok) return field(name, ok or {}, { "big" }) end

    local METHODS = {
      { "describe_batch_production", DESCRIBE, {
        STRING_PARAM("ProductId"), STRING_PARAM("BatchProductionId"), EXTRA } },
      { "create_batch_production", CREATE, {
        STRING_PARAM("ProjectId"), STRING_PARAM("ProductId"),
        field("BurnMethod", {}), field("GenerationMethod", {}),
        field("UploadUrl", { "nil" }, { "big" }),
        field("BatchCnt", { "nil", "n42" }),
        field("GenerationQRCode", { "nil", "true", "false" }),
        EXTRA } },
      { "get_batch_productions_list", LIST, {
        STRING_PARAM("ProjectId"), field("Offset", { "nil", "n42" }), field("Limit", { "nil", "n42" }), EXTRA } },
      { "each_batch_production", LIST, {
        STRING_PARAM("ProjectId"), field("Offset", { "nil", "n42" }), field("Limit", { "nil", "n42" }), EXTRA } },
    }

    -- Calls a method; each_batch_production is walked (at most 3 items) and reports its first error.
    local function invoke(method, params, opts)
      if method == "each_batch_production" then
        local ok, iter = pcall(client.each_batch_production, client, params, opts)
        if not ok then return false, iter end
        local n = 0
        local wok, werr = pcall(function()
          for item, err in iter do
            if item == false then return err end
            n = n + 1
            if n >= 3 then break end
          end
        end)
        if not wok then return false, werr end
        if werr then return true, nil, werr end
        return true, { items = n }
      end
      return pcall(client[method], client, params, opts)
    end

    for _, m in ipairs(METHODS) do
      local method, base, fields = m[1], m[2], m[3]
      for _, f in ipairs(fields) do
        it(method .. ": " .. f.name .. " with every kind of value", function()
          local problems = {}
          for _, v in ipairs(VALUES) do
            local params = {}
            for k, x in pairs(base) do params[k] = x end
            params[f.name] = v[3]
            local ok, res, err = invoke(method, params, { deadline = 3 })
            watch:see(res, err)
            local problem = judge_client(f, v, not ok, res, err, f.names or { f.name })
            check_wire(method .. " " .. f.name .. " = " .. v[2])
            if problem then problems[#problems + 1] = v[2] .. ": " .. printable(problem) end
          end
          assert(#problems == 0, method .. " " .. f.name .. ":\n  " .. table.concat(problems, "\n  "))
        end)
      end

      it(method .. ": params and per-call options of every kind", function()
        local problems = {}
        -- {} is a table, but then the first required parameter is missing: that one is named.
        local PARAMS = field("params", {}, { "table" }, { names = { "params", "ProductId", "ProjectId" } })
        local OPTS = field("opts", { "nil", "table" })
        local OPT_FIELDS = { field("timeout", { "nil", "n42" }), field("deadline", { "nil", "n42" }),
          field("retries", { "nil" }) }
        for _, v in ipairs(VALUES) do
          if v[1] ~= "nil" then  -- nil params mean {}: then the first required parameter is missing
            local ok, res, err = invoke(method, v[3], nil)
            watch:see(res, err)
            local problem = judge_client(PARAMS, v, not ok, res, err, PARAMS.names)
            if problem then problems[#problems + 1] = "params = " .. v[2] .. ": " .. printable(problem) end
          end
          local ok, res, err = invoke(method, base, v[3])
          watch:see(res, err)
          local problem = judge_client(OPTS, v, not ok, res, err, { "opts" })
          if problem then problems[#problems + 1] = "opts = " .. v[2] .. ": " .. printable(problem) end
          for _, of in ipairs(OPT_FIELDS) do
            ok, res, err = invoke(method, base, { [of.name] = v[3] })
            watch:see(res, err)
            problem = judge_client(of, v, not ok, res, err, { of.name })
            if problem then
              problems[#problems + 1] = "opts." .. of.name .. " = " .. v[2] .. ": " .. printable(problem)
            end
          end
        end
        check_wire(method .. " params/opts")
        assert(#problems == 0, method .. ":\n  " .. table.concat(problems, "\n  "))
      end)
    end

    -- The batch helpers: their parameters, the download's path and their options.
    local HELPERS = {
      { "wait_batch_production", { field("deadline", { "nil", "n42" }), field("interval", { "nil", "n42" }),
        field("max_interval", { "nil", "n42" }), field("on_progress", { "nil", "func" }) } },
      { "download_batch_production", { field("timeout", { "nil", "n42" }), field("connect_timeout", { "nil", "n42" }),
        field("max_refreshes", { "nil", "n42" }), field("on_progress", { "nil", "func" }) } },
    }
    for _, h in ipairs(HELPERS) do
      local method, opt_fields = h[1], h[2]
      it(method .. ": parameters, path and options of every kind", function()
        if not client[method] then
          pending("the client has no " .. method .. " yet")
          return
        end
        local dir = util.tmpdir()
        local function invoke_helper(params, path, opts)
          if method == "wait_batch_production" then return pcall(client[method], client, params, opts) end
          return pcall(client[method], client, params, path, opts)
        end
        local problems = {}
        local function note(what, v, problem)
          if problem then problems[#problems + 1] = what .. " = " .. v[2] .. ": " .. printable(problem) end
        end
        for _, v in ipairs(VALUES) do
          for _, f in ipairs{ STRING_PARAM("ProductId"), STRING_PARAM("BatchProductionId") } do
            local params = { ProductId = DESCRIBE.ProductId, BatchProductionId = DESCRIBE.BatchProductionId }
            params[f.name] = v[3]
            local ok, res, err = invoke_helper(params, dir .. "/out.csv",
              method == "wait_batch_production" and { deadline = 3 } or nil)
            watch:see(res, err)
            note(f.name, v, judge_client(f, v, not ok, res, err, { f.name }))
          end
          for _, f in ipairs(opt_fields) do
            local ok, res, err = invoke_helper(DESCRIBE, dir .. "/out.csv", { [f.name] = v[3] })
            watch:see(res, err)
            note("opts." .. f.name, v, judge_client(f, v, not ok, res, err, { f.name }))
          end
          local ok, res, err = invoke_helper(DESCRIBE, dir .. "/out.csv", v[3])
          watch:see(res, err)
          note("opts", v, judge_client(field("opts", { "nil", "table" }), v, not ok, res, err, { "opts" }))
          if method == "download_batch_production" then
            -- Only the file name is hostile: the folder is ours. An odd name (CR, LF, empty: the folder
            -- itself) may work or fail; a NUL, or a path that is not a string, must be refused.
            local PATH = field("path", {}, { "big", "bytes", "crlf", "lf", "cr", "empty" })
            local path = type(v[3]) == "string" and (dir .. "/" .. v[3]) or v[3]
            ok, res, err = invoke_helper(DESCRIBE, path, nil)
            watch:see(res, err)
            note("path", v, judge_client(PATH, v, not ok, res, err, { "path" }))
          end
          check_wire(method .. " " .. v[2])
        end
        util.rm_rf(dir)
        assert(#problems == 0, method .. ":\n  " .. table.concat(problems, "\n  "))
      end)
    end

    it("call: the action and its parameters with every kind of value", function()
      local problems = {}
      local ACTION = field("action", {})
      for _, v in ipairs(VALUES) do
        local ok, res, err = pcall(client.call, client, v[3], { ProductId = "R32ONVL0EU" }, { deadline = 3 })
        watch:see(res, err)
        local problem = judge_client(ACTION, v, not ok, res, err, { "action" })
        if problem then problems[#problems + 1] = "action = " .. v[2] .. ": " .. printable(problem) end
        ok, res, err = pcall(client.call, client, "DescribeBatchProduction", { ProductId = "R32ONVL0EU",
          BatchProductionId = "LC-ya6zinv9", Extra = v[3] }, { deadline = 3 })
        watch:see(res, err)
        problem = judge_client(EXTRA, v, not ok, res, err, EXTRA.names)
        if problem then problems[#problems + 1] = "params.Extra = " .. v[2] .. ": " .. printable(problem) end
        check_wire("call " .. v[2])
      end
      -- Keys the encoder refuses, cycles, and nesting past the decoder's depth.
      local cyclic = {}
      cyclic.self = cyclic
      local deep = {}
      local cur = deep
      for _ = 1, 2000 do cur.x = {} cur = cur.x end
      for name, params in pairs{ ["a cycle"] = { Cycle = cyclic }, ["2000 levels"] = { Deep = deep },
        ["a function key"] = { [print] = 1 }, ["a sparse array"] = { Sparse = { [1] = 1, [1000000] = 2 } } } do
        local ok, res, err = pcall(client.call, client, "DescribeBatchProduction", params)
        watch:see(res, err)
        if not ok then problems[#problems + 1] = name .. ": raised " .. tostring(res)
        elseif res ~= nil then problems[#problems + 1] = name .. ": accepted"
        elseif not iot.is_error(err) or err.field ~= "params" then
          problems[#problems + 1] = name .. ": " .. tostring(err)
        end
      end
      check_wire("call: odd params")
      assert(#problems == 0, "call:\n  " .. table.concat(problems, "\n  "))
    end)

    it("methods called without a client (a dot instead of a colon) return an error", function()
      for _, name in ipairs{ "describe_batch_production", "create_batch_production", "get_batch_productions_list",
        "call" } do
        for _, v in ipairs(VALUES) do
          local ok, res, err = pcall(client[name], v[3], { ProductId = "R32ONVL0EU" })
          assert(ok, name .. " raised with self = " .. v[2] .. ": " .. tostring(res))
          assert.is_nil(res)
          assert.equal("self", err.field)
        end
      end
      for _, v in ipairs(VALUES) do
        local ok, iter = pcall(client.each_batch_production, v[3], { ProjectId = "PROJECT0001" })
        assert(ok, "each_batch_production raised with self = " .. v[2])
        local item, err = iter()
        assert.is_false(item)
        assert.equal("self", err.field)
      end
    end)

    it("params tables whose metamethods raise do not make the client raise", function()
      local hostile = setmetatable({ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" },
        { __index = raising, __newindex = raising, __pairs = raising, __len = raising, __tostring = raising })
      for _, call in ipairs{
        function() return client:describe_batch_production(hostile) end,
        function() return client:describe_batch_production(DESCRIBE, hostile) end,
        function() return client:call("DescribeBatchProduction", hostile) end,
      } do
        local ok, res, err = pcall(call)
        assert(ok, "raised: " .. tostring(res))
        assert(res ~= nil or iot.is_error(err))
      end
    end)

    it("a closed client answers every method with an error, and close is idempotent", function()
      local c = assert(iot.new(client_options()))
      c:close()
      c:close()
      local before = emu:counters().requests
      for _, name in ipairs{ "describe_batch_production", "create_batch_production", "get_batch_productions_list" } do
        local res, err = c[name](c, name == "create_batch_production" and CREATE or DESCRIBE)
        assert.is_nil(res)
        assert.equal("ClientError.ClientClosed", err.code)
      end
      local _, err = c:call("DescribeBatchProduction", DESCRIBE)
      assert.equal("ClientError.ClientClosed", err.code)
      local item, ierr = c:each_batch_production(LIST)()
      assert.is_false(item)
      assert.equal("ClientError.ClientClosed", ierr.code)
      assert.equal(before, emu:counters().requests)
      requests_seen = emu:counters().requests
    end)

    it("iot.is_error takes anything", function()
      for _, v in ipairs(VALUES) do
        local ok, r = pcall(iot.is_error, v[3])
        assert(ok)
        assert.is_false(r)
      end
    end)
  end)

  ---------------------------------------------------------------------------------------------------
  describe("the core", function()
    -- Judges a core result: misuse raises naming the field; a value JSON cannot hold is nil, err.
    local function judge_core(f, v, ok, res, err)
      local id = v[1]
      if not ok then   -- misuse raises: the core's convention; the message names the field, not the value
        if f.ok[id] then return "raised for a valid value: " .. tostring(res) end
        if tostring(res):find(MARK, 1, true) then return "the error repeats the value: " .. tostring(res) end
        return nil
      end
      if res ~= nil then
        if f.ok[id] or f.maybe[id] then return nil end
        return "accepted " .. describe_value(v[3]) .. " (must be refused)"
      end
      if type(err) ~= "table" or type(err.code) ~= "string" or type(err.message) ~= "string" then
        return "returned no error table"
      end
      if err.code ~= "ClientError.InvalidParameter" then
        if f.ok[id] or f.maybe[id] then return nil end   -- accepted, then failed further on
        return "accepted " .. describe_value(v[3]) .. ", then " .. err.code
      end
      if f.ok[id] and err.field == f.name then return "refused a valid value: " .. err.message end
      if not f.ok[id] and err.field ~= f.name and not (f.names and f.names[err.field]) then
        return "err.field is " .. tostring(err.field) .. ": " .. err.message
      end
      if err.sent ~= false then return "an input error with sent ~= false" end
      return nil
    end

    local function run_fields(what, fields, base, fn)
      for _, f in ipairs(fields) do
        it(what .. ": " .. f.name .. " with every kind of value", function()
          local problems = {}
          for _, v in ipairs(VALUES) do
            local t = base()
            t[f.name] = f.map and f.map(v[3]) or v[3]
            local ok, res, err = pcall(fn, t)
            if ok and type(res) == "table" and f.check then
              local p = f.check(res)
              if p then problems[#problems + 1] = v[2] .. ": " .. printable(p) end
            end
            local problem = judge_core(f, v, ok, res, err)
            check_wire(what .. " " .. f.name .. " = " .. v[2])
            if problem then problems[#problems + 1] = v[2] .. ": " .. printable(problem) end
            if type(res) == "userdata" then res:close() end
          end
          assert(#problems == 0, what .. " " .. f.name .. ":\n  " .. table.concat(problems, "\n  "))
        end)
      end
    end

    -- Strings that end up in header lines or the canonical request: refused when empty or holding CR, LF
    -- or NUL; 10 MB and non-UTF-8 bytes are the caller's business.
    local S = function(name, optional)
      return field(name, optional and { "nil" } or {}, { "big", "bytes" })
    end
    -- Strings handed to C as they are (file names): only NUL is refused.
    local C_STRING = function(name)
      return field(name, { "nil" }, { "big", "bytes", "crlf", "lf", "cr" })
    end
    -- Secret keys only feed HMAC: any bytes go.
    local KEY = function(name) return field(name, {}, { "big", "bytes", "nul", "crlf", "lf", "cr" }) end
    local NUMBER = function(name) return field(name, { "nil", "n42" }) end

    -- No header value of a signed request may hold CR, LF or NUL.
    local function clean_headers(headers)
      for k, v in pairs(headers) do
        if tostring(k):find("[\r\n%z]") or tostring(v):find("[\r\n%z]") then
          return "a header holds CR/LF/NUL: " .. k
        end
      end
    end

    describe("core.sign", function()
      local function base()
        return { secret_id = secrets.SECRET_ID, secret_key = secrets.SECRET_KEY, host = "127.0.0.1:8080",
          region = "ap-guangzhou", action = "DescribeBatchProduction", version = "2019-04-23",
          timestamp = 1551113065, payload = "{}" }
      end
      local FIELDS = {
        S("secret_id"), KEY("secret_key"), S("token", true), S("service", true), S("host"), S("region"), S("action"),
        S("version"), field("timestamp", { "nil", "n42" }),
        -- The payload is the body, not a header: any bytes go.
        field("payload", { "empty", "big", "nul", "crlf", "lf", "cr", "bytes" }),
        field("method", { "nil" }), S("query", true), S("content_type", true), field("signed_headers", { "nil" }),
        S("language", true),
      }
      for _, f in ipairs(FIELDS) do f.check = clean_headers end
      run_fields("core.sign", FIELDS, base, core.sign)

      it("raises when its argument is not a table, or lacks what it needs", function()
        for _, v in ipairs(VALUES) do
          if v[1] ~= "table" then
            assert.has_error(function() core.sign(v[3]) end)
          end
        end
        assert.has_error(function() core.sign({}) end)
      end)
    end)

    describe("core.new_session", function()
      local FIELDS = {
        NUMBER("timeout"), NUMBER("connect_timeout"), C_STRING("ca_file"), C_STRING("ca_path"), S("proxy", true),
        S("user_agent", true), NUMBER("max_response_bytes"), S("host"), S("region"), S("language", true),
        S("service", true), field("scheme", { "nil" }), NUMBER("port"),
        field("interruptible", { "nil", "true", "false" }),
      }
      run_fields("core.new_session", FIELDS, function() return { host = "127.0.0.1", region = "ap-guangzhou" } end,
        core.new_session)
    end)

    local function request()
      return { secret_id = secrets.SECRET_ID, secret_key = secrets.SECRET_KEY, token = secrets.TOKEN,
        action = "DescribeBatchProduction", version = "2019-04-23",
        params = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" } }
    end
    local COMMON = {
      S("secret_id"), KEY("secret_key"), S("token", true), field("timestamp", { "nil", "n42" }), NUMBER("timeout"),
      field("fresh_connection", { "nil", "true", "false" }),
    }

    describe("core.call", function()
      local base = request
      local FIELDS = {
        S("action"), S("version"), field("params", { "nil", "table" }),
        -- A value inside params: anything the JSON encoder takes is sent (escaped); the rest is refused.
        field("Extra", { "nil", "n42", "neg", "true", "false", "table", "empty", "big", "nul", "crlf", "lf", "cr",
          "bytes" }, {}, { names = set{ "params" } }),
      }
      for _, f in ipairs(COMMON) do FIELDS[#FIELDS + 1] = f end
      run_fields("core.call", FIELDS, base, function(t)
        if t.Extra ~= nil then   -- Extra stands for a value inside params
          t.params.Extra, t.Extra = t.Extra, nil
        end
        return core.call(session, t)
      end)
    end)

    describe("core.download", function()
      local dir = util.tmpdir()
      local url
      local function base()
        if not url then
          url = assert(core.call(session, request())).DownloadUrl
        end
        return { url = url, path = dir .. "/out.csv" }
      end
      teardown(function() util.rm_rf(dir) end)
      local FIELDS = {
        field("url", {}, { "big" }),
        -- Paths stay inside our temporary folder: only the file name is hostile.
        field("path", {}, { "big", "bytes" }, { map = function(v)
          if type(v) == "string" then return dir .. "/" .. v end
          return v
        end, names = set{ "path" } }),
        field("on_progress", { "nil", "func" }), NUMBER("timeout"), NUMBER("connect_timeout"),
      }
      -- A path made of our folder and an empty, NUL or CR/LF name: the folder itself, or a name holding
      -- control bytes. Only NUL must be refused; the others are odd file names, not injections.
      FIELDS[2].maybe = set{ "big", "bytes", "empty", "crlf", "lf", "cr" }
      run_fields("core.download", FIELDS, base, function(t) return core.download(session, t) end)
    end)

    it("the request functions raise only for a wrong session or request", function()
      local closed = assert(core.new_session())
      closed:close()
      for _, name in ipairs{ "call", "download" } do
        for _, v in ipairs(VALUES) do
          assert.has_error(function() core[name](v[3], request()) end, nil, name .. " with session = " .. v[2])
          if v[1] ~= "table" then
            assert.has_error(function() core[name](session, v[3]) end, nil, name .. " with req = " .. v[2])
          end
        end
        local ok, res, err = pcall(core[name], closed, request())
        assert.is_true(ok)
        assert.is_nil(res)
        assert.equal("ClientError.SessionClosed", err.code)
      end
    end)
  end)

  ---------------------------------------------------------------------------------------------------
  -- A progress function is caller code running inside libcurl's transfer. Whatever it does with the
  -- session or the client it belongs to (close it, start another call on it) must end in a result or an
  -- error, not a crash. Each case runs in a child process, so that a crash fails this test only.
  describe("progress functions that turn on their own session", function()
    local CPATH = os.getenv("TCIOT_CHILD_CPATH")   -- to try a candidate fix of the core
    local CHILD = [[
local core = require("tencentcloud.iotexplorer.core")
local iot = require("tencentcloud.iotexplorer")
local what, endpoint, id, key, token, batch, dir = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6], arg[7]
local req = { secret_id = id, secret_key = key, token = token, action = "DescribeBatchProduction",
  version = "2019-04-23", params = { ProductId = "R32ONVL0EU", BatchProductionId = batch } }
local host, port = endpoint:match("^http://([^:/]+):(%d+)")
local calls = 0
local function report(tag, res, err)
  io.stdout:write(tag, " ", res and "result" or tostring(err and err.code), "\n")
end
if what:find("^core") then
  local s = assert(core.new_session{ scheme = "http", host = host, port = tonumber(port), region = "ap-guangzhou",
    timeout = 10 })
  local url = assert(core.call(s, req)).DownloadUrl
  local res, err = core.download(s, { url = url, path = dir .. "/core.csv", on_progress = function(got)
    if got == 0 then return end
    calls = calls + 1
    if calls ~= 2 then return end
    if what == "core-close" then s:close()
    elseif what == "core-call" then report("inner", core.call(s, req))
    elseif what == "core-download" then report("inner", core.download(s, { url = url, path = dir .. "/inner.csv" }))
    end
  end })
  report("outer", res, err)
  report("after", core.call(s, req))
  s:close()
else
  local c = assert(iot.new{ region = "ap-guangzhou", endpoint = endpoint, secret_id = id, secret_key = key,
    token = token, metadata_endpoint = false, rate_limit = false, max_attempts = 1 })
  if not c.download_batch_production then print("no download_batch_production") os.exit(0) end
  local res, err = c:download_batch_production({ ProductId = "R32ONVL0EU", BatchProductionId = batch },
    dir .. "/client.csv", { on_progress = function(got)
      if got == 0 then return end
      calls = calls + 1
      if calls ~= 2 then return end
      if what == "client-close" then c:close()
      else report("inner", c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = batch }) end
    end })
  report("outer", res, err)
  report("after", c:describe_batch_production{ ProductId = "R32ONVL0EU", BatchProductionId = batch })
  c:close()
end
print("survived")
]]

    local dir, script, batch
    setup(function()
      dir = util.tmpdir()
      script = dir .. "/child.lua"
      util.write_file(script, CHILD)
      -- A device file of a few MB, so that the transfer is still running when the progress function acts.
      batch = emu:seed{ ProductId = "R32ONVL0EU", BatchCnt = 40000, Status = 3 }[1].BatchProductionId
    end)
    teardown(function() util.rm_rf(dir) end)

    local function run(what)
      local _, out, code = util.run(util.lua_command(script, { what, emu.url, secrets.SECRET_ID, secrets.SECRET_KEY,
        secrets.TOKEN, batch, dir }, { cpath = CPATH }))
      out = out .. "rc=" .. tostring(code) .. "\n"   -- the exit status after the output, as the checks read it
      watch:see(out)
      check_wire("progress function " .. what)
      return out
    end

    for _, what in ipairs{ "core-close", "core-call", "core-download", "client-close", "client-call" } do
      it(what .. ": no crash, and an answer for every call", function()
        local out = run(what)
        if out:find("no download_batch_production", 1, true) then
          pending("the client has no download_batch_production yet")
          return
        end
        assert(out:find("survived\nrc=0\n", 1, true), "the child died (rc=139 is a segfault):\n" .. out)
        assert(out:find("outer ", 1, true), out)
        if what:find("call") or what:find("download") then assert(out:find("inner ", 1, true), out) end
        -- After close, the next call says so; otherwise the session still works.
        if what:find("close") then
          assert(out:find("after ClientError.%a+Closed") , out)
        else
          assert(out:find("after result", 1, true), out)
        end
      end)
    end
  end)

  ---------------------------------------------------------------------------------------------------
  describe("endpoints", function()
    local REFUSED = {
      "file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/",
      "ldap://127.0.0.1/", "telnet://127.0.0.1", "smb://127.0.0.1/share", "scp://127.0.0.1/x", "ws://127.0.0.1",
      "http:/127.0.0.1", "http//127.0.0.1", "//127.0.0.1", "127.0.0.1:80", "http://", "https://",
      "http://user:pw@127.0.0.1", " http://127.0.0.1", "http://127.0.0.1 /",
    }

    it("anything but http:// and https:// is refused by the client, naming the endpoint", function()
      for _, endpoint in ipairs(REFUSED) do
        local c, err = iot.new(client_options{ endpoint = endpoint })
        if c then
          local res, cerr = c:describe_batch_production({ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" })
          c:close()
          assert(res == nil, endpoint .. " was accepted")
          err = cerr
        end
        assert.is_true(iot.is_error(err), endpoint)
        assert.equal("ClientError.InvalidParameter", err.code, endpoint)
        assert.equal("endpoint", err.field, endpoint)
      end
      assert.equal(0, check_wire("endpoints"))
    end)

    it("and by the core: other schemes, and hosts that would change the URL, raise", function()
      for _, case in ipairs{ { scheme = "ftp" }, { scheme = "file" }, { scheme = "HTTP" }, { host = "user:pw@h" },
        { host = "h/path" }, { host = "h?q" }, { host = "h#f" }, { host = " h" }, { host = "h\\x" } } do
        local o = { scheme = case.scheme or "http", host = case.host or "127.0.0.1", region = "ap-guangzhou" }
        assert.has_error(function() core.new_session(o) end)
      end
      for _, url in ipairs{ "file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/_x",
        "dict://127.0.0.1:11211/", "ldap://127.0.0.1/" } do
        assert.has_error(function() core.download(session, { url = url, path = "/dev/null" }) end)
      end
      assert.equal(0, check_wire("endpoints (core)"))
    end)

    it("accepts both schemes in any case", function()
      for _, scheme in ipairs{ "http://", "HTTP://", "Http://" } do
        local c = assert(iot.new(client_options{ endpoint = scheme .. emu.url:match("^http://(.*)$") }))
        local res, err = c:describe_batch_production({ ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" })
        c:close()
        assert(res, tostring(err))
      end
      check_wire("schemes")
    end)
  end)

  it("no header was smuggled onto the wire, and no secret showed, in any of the above", function()
    check_wire("the end")
    assert(#smuggled == 0, table.concat(smuggled, "\n"))
    watch:assert_clean()
  end)
end)

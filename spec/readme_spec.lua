-- The README, run: its Lua programs and its `$ tciot ...` sessions against the local API emulator started
-- the way the README says (`tciot emulator`, then its export lines), comparing what they print with what
-- the README shows. Ids, times, counts, ports, request ids and signatures may differ; the shape may not.
-- A session block may be preceded by an HTML comment that sets the emulator up for it:
--   <!-- readme_spec: before the next block, fault {...} / seed {...} / reset -->
local cjson = require("cjson.safe")
local emulator = require("helpers.emulator")
local tciot = require("helpers.tciot")
local util = require("helpers.util")

local q = util.shell_quote
local README = util.read_file(util.ROOT .. "/README.md")

-- ----------------------------------------------------------------------------
-- Reading the README.

-- Every fenced block: { lang, text, line, directives (the readme_spec comments just before it) }.
local function blocks()
  local out, pending, n = {}, {}, 0
  local current
  for line in (README .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:find("^```%s*$") then
        out[#out + 1] = current
        current = nil
      else
        current.lines[#current.lines + 1] = line
      end
    else
      local lang = line:match("^```(%w*)%s*$")
      if lang then
        current = { lang = lang, lines = {}, line = n, directives = pending }
        pending = {}
      else
        local d = line:match("^<!%-%- readme_spec: before the next block, (.-) %-%->$")
        if d then pending[#pending + 1] = d end
      end
    end
  end
  for _, b in ipairs(out) do b.text = table.concat(b.lines, "\n") end
  return out
end

-- The README from the end of a block to the next heading.
local function after(block)
  local start = README:find(block.text, 1, true) + #block.text
  return README:match("^(.-)\n#", start) or README:sub(start)
end

-- A pattern for what the README shows: literal text, except that "..." stands for anything (a line of
-- only "..." for any number of lines), PORT stands for a port, and numbers and hexadecimal runs may differ.
local function shape(expected)
  local parts = {}
  for line in (expected .. "\n"):gmatch("([^\n]*)\n") do
    if line == "..." then
      parts[#parts + 1] = "\1"   -- any lines, newlines included (placed below)
    else
      local p = {}
      local pos = 1
      while pos <= #line do
        local dots = line:find("...", pos, true)
        local chunk = line:sub(pos, (dots or (#line + 1)) - 1)
        -- Within a literal chunk: runs of hex digits holding a digit, and plain numbers, are variable.
        chunk = chunk:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
        chunk = chunk:gsub("%x*%d%x*", function(run)
          if run:find("%a") then return "%x+" end
          return "%d+"
        end)
        chunk = chunk:gsub("PORT", "%%d+")   -- the README's placeholder for the emulator's port
        p[#p + 1] = chunk
        if not dots then break end
        p[#p + 1] = "[^\n]-"
        pos = dots + 3
      end
      parts[#parts + 1] = table.concat(p) .. "\n"
    end
  end
  -- "." matches a newline too: ".-" spans lines.
  local pat = table.concat(parts):gsub("\1", ".-")
  return "^" .. pat .. "$"
end

-- The sessions of a block: { { command, expected } }.
local function sessions(text)
  local out, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local cmd = line:match("^%$ (.*)$")
    if cmd then
      current = { command = cmd, expected = {} }
      out[#out + 1] = current
    elseif current then
      current.expected[#current.expected + 1] = line
    end
  end
  for _, s in ipairs(out) do s.expected = table.concat(s.expected, "\n") end
  return out
end

-- ----------------------------------------------------------------------------

describe("README", function()
  local t, pipe, emu_out, url, env_words, work, host, port

  setup(function()
    t = tciot.start({ emulator = false })
    work = t.work
    emu_out = work .. "/emulator.out"
    local fixture = work .. "/fixture.json"
    util.write_file(fixture, '{"status_step_seconds": 0.3}')
    -- The emulator as the README starts it: the installed tciot.
    pipe = assert(io.popen(string.format("exec env -u LD_PRELOAD %s emulator --port 0 --fixture %s "
      .. "--exit-on-stdin-eof >%s 2>&1", q(t.installed), q(fixture), q(emu_out)), "w"))
    util.wait_for("the emulator's export lines", function()
      return (util.read_file(emu_out) or ""):find("_ENDPOINT=[^\n]*\n")
    end, 15)
    url = util.read_file(emu_out):match("^EMULATOR_READY (http://[%d.]+:%d+)\n")
    assert(url, util.read_file(emu_out))
    host, port = url:match("^http://([^:]+):(%d+)")
    -- What `eval "$(grep '^export ' emulator.out)"` gives, in a fresh environment.
    env_words = { "env", "-i", "HOME=" .. q(t.home), "LANG=C",
      "PATH=" .. q(work .. "/root/usr/bin:/usr/bin:/bin"),
      "LUA_PATH=" .. q(util.ROOT .. "/lua/?.lua;" .. util.ROOT .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. q(util.ROOT .. "/build/" .. util.FLAVOUR .. "/?.so;;") }
    for name, value in util.read_file(emu_out):gmatch("\nexport ([%w_]+)=([^\n]*)") do
      env_words[#env_words + 1] = q(name .. "=" .. value)
    end
  end)

  teardown(function()
    if pipe then pipe:close() end
    if t then t:stop() end
  end)

  local function control(method, path, body)
    local status, _, resp = emulator.http(host, tonumber(port), {
      method = method, path = "/_emulator/" .. path, headers = { ["Content-Type"] = "application/json" },
      body = body or "{}" })
    assert(status == 200, "emulator control " .. path .. ": " .. tostring(resp))
  end

  local function apply(directive)
    local verb, arg = directive:match("^(%w+)%s*(.*)$")
    if verb == "fault" then control("POST", "faults", arg)
    elseif verb == "seed" then control("POST", "batches", arg)
    elseif verb == "reset" then control("POST", "reset")
    else error("unknown readme_spec directive: " .. directive) end
  end

  local function sh(command)
    local ok, out = util.run("cd " .. q(work) .. " && " .. table.concat(env_words, " ") .. " sh -c "
      .. q(command) .. " 2>&1")
    return ok, out
  end

  it("shows what tciot emulator prints", function()
    for _, b in ipairs(blocks()) do
      for _, s in ipairs(sessions(b.text)) do
        if s.command:find("^tciot emulator") then
          local shown = util.read_file(emu_out):match("^(EMULATOR_READY[^\n]*\n.-_ENDPOINT=[^\n]*\n)")
          assert.matches(shape(s.expected), shown)
        end
      end
    end
  end)

  it("runs every tciot session it shows, with the output it shows", function()
    local ran = 0
    control("POST", "batches", cjson.encode({ BatchProductionId = "LC-65o3ekiy", ProductId = "R32ONVL0EU",
      BatchCnt = 5 }))
    for _, b in ipairs(blocks()) do
      local list = sessions(b.text)
      if #list > 0 and list[1].command:find("tciot ", 1, true) and not b.text:find("==>", 1, true) then
        for _, d in ipairs(b.directives) do apply(d) end
        for _, s in ipairs(list) do
          if not s.command:find("^tciot emulator") then
            if s.command:find("%-%-wait") then
              -- A fresh batch, so the wait shows it from Status 0: steps of a second leave a slow start
              -- on a loaded machine time for its first poll.
              control("POST", "reset")
              control("POST", "config", '{"status_step_seconds": 1}')
              control("POST", "batches", cjson.encode({ BatchProductionId = "LC-65o3ekiy",
                ProductId = "R32ONVL0EU", BatchCnt = 5 }))
            end
            local _, out = sh(s.command)
            assert.matches(shape(s.expected), out, "README line " .. b.line .. ": $ " .. s.command)
            ran = ran + 1
          end
        end
      end
    end
    assert.is_true(ran >= 10, "sessions run: " .. ran)
  end)

  it("runs its complete Lua programs against the emulator, the quick start printing what it says", function()
    local ran = 0
    for _, b in ipairs(blocks()) do
      if b.lang == "lua" and b.text:find('^local iot = require%("tencentcloud.iotexplorer"%)') then
        local file = work .. "/example" .. b.line .. ".lua"
        util.write_file(file, b.text)
        local ok, out = sh(util.INTERPRETER .. " " .. q(file))
        assert.is_true(ok, "README line " .. b.line .. ":\n" .. out)
        local says = (after(b) or ""):match("It prints `([^`]*)`")
        if says then
          assert.matches(shape(says), out, "README line " .. b.line)
        end
        ran = ran + 1
      end
    end
    assert.is_true(ran >= 3, "programs run: " .. ran)
  end)

  it("has Lua fragments that compile", function()
    for _, b in ipairs(blocks()) do
      if b.lang == "lua" then
        local ok, err = (loadstring or load)(b.text, "README line " .. b.line)
        assert(ok, err)
      end
    end
  end)

  it("names every error code constant of iot.errors, and every one it names exists", function()
    local errors = require("tencentcloud.iotexplorer.errors")
    for name, code in pairs(errors) do
      if type(code) == "string" and name:find("^%u[%u_]+$") then
        assert.truthy(README:find(code, 1, true), code .. " (" .. name .. ") is not in the README")
        assert.truthy(README:find(name, 1, true), "iot.errors." .. name .. " is not in the README")
      end
    end
    local listed = README:match("`iot%.errors` holds these codes as constants.-\n\n")
    for name in listed:gmatch("`([%u_]+)`") do
      assert.is_string(errors[name], "iot.errors." .. name)
    end
  end)

  it("lists every tciot option of DescribeBatchProduction in its command summary lines", function()
    local summary = table.concat({ README:match("\n(tciot DescribeBatchProduction [^\n]*\n"
      .. "tciot DescribeBatchProduction [^\n]*)") })
    local cli_commands = require("tencentcloud.iotexplorer.cli.commands")
    for _, o in ipairs(cli_commands.by_name.DescribeBatchProduction.options) do
      if not o.param and o[1] ~= "cli-input-json" and o[1] ~= "generate-cli-skeleton" then
        assert.truthy(summary:find("--" .. o[1], 1, true), "--" .. o[1] .. " in: " .. summary)
      end
    end
  end)
end)

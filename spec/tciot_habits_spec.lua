-- tciot's tccli habits and its honesty on stderr: every action a command, --output text, --cli-input-json,
-- --generate-cli-skeleton, --param-json files, --version, --all, "did you mean", the region message, CA
-- options, the hint for a bare host:port, tccli's configure file, the credential source in --verbose,
-- escaped service text, the note on a create whose outcome is unknown, and what --wait shows and says.
-- The real installed script, in a clean environment, against the local emulator.
local actions = require("tencentcloud.iotexplorer.actions")
local tciot = require("helpers.tciot")
local util = require("helpers.util")

local expect = tciot.expect
local PRODUCT, PROJECT = "R32ONVL0EU", "PROJECT0001"
local DOC = { "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "LC-ya6zinv9" }

local concat, json = tciot.concat, tciot.json

describe("tciot", function()
  local h = tciot.hooks(0.15)
  local t, emu
  setup(function() h.setup(); t, emu = h.t, h.emu end)
  teardown(h.teardown)
  before_each(h.before_each)

  describe("commands from actions.lua", function()
    it("has a command for every action, its parameters as typed --Name options in the help", function()
      for _, a in ipairs(actions.list) do
        local r = t:run({ a.name, "--help" })
        expect(r, 0)
        for _, p in ipairs(a.params) do
          local line = r.stdout:match("\n  %-%-" .. p.name .. " [^\n]*")
          assert.truthy(line, p.name .. " in " .. a.name .. " --help:\n" .. r.stdout)
          assert.truthy(line:find(p.doc, 1, true), line)
          if p.required then assert.truthy(line:find("(required)", 1, true), line) end
        end
        assert.truthy(r.stdout:find(a.summary, 1, true))
        local top = t:run({ "--help" })
        assert.truthy(top.stdout:find("\n  " .. a.name .. " ", 1, true), a.name)
      end
    end)

    it("marks parameters required only in some cases, and checks them before sending", function()
      local r = t:run({ "CreateBatchProduction", "--help" })
      assert.matches("\n  %-%-BatchCnt N +[^\n]*%(required when GenerationMethod is 0%)", r.stdout)
      r = t:run({ "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "0",
        "--GenerationMethod", "0" })
      expect(r, 2, "tciot: --BatchCnt is required when GenerationMethod is 0")
      r = t:run({ "DescribeDevice" })
      expect(r, 2, "tciot: --ProductId is required when DeviceId is not given")
      assert.are.equal(0, emu:counters().requests)
    end)

    it("sends DescribeDevice with no code of its own in tciot", function()
      local r = t:run({ "DescribeDevice", "--ProductId", PRODUCT, "--DeviceName", "dev1" })
      -- Whatever the emulator answers, the request went out signed, as DescribeDevice.
      assert.are.equal(1, emu:counters().requests)
      assert.is_true(r.code == 0 or r.code == 1, r.stderr)
      if r.code == 1 then assert.matches("^tciot: [%w.]+: ", r.stderr) end
    end)
  end)

  describe("tccli habits", function()
    it("--output text prints tab-separated values, lists one row per item", function()
      local r = t:run(concat({ "--output", "text" }, DOC))
      expect(r, 0)
      local fields = {}
      for f in (r.stdout:match("^[^\n]*") .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = f end
      -- Sorted keys: BatchCnt BurnMethod CreateTime DownloadUrl GenerationMethod LastFailedReason RequestId ...
      assert.are.equal("3", fields[1])
      assert.are.equal("1572233486", fields[3])
      assert.matches("^http://", fields[4])
      r = t:run({ "--output", "text", "GetBatchProductionsList", "--ProjectId", PROJECT })
      expect(r, 0)
      assert.matches("\nBATCHPRODUCTIONS\tLC%-%w+\t%d\t%d+\tR32ONVL0EU\t", r.stdout)
    end)

    it("--cli-input-json takes the parameters inline or from file://, --Name options override it", function()
      local r = t:run({ "DescribeBatchProduction", "--cli-input-json",
        '{"ProductId": "R32ONVL0EU", "BatchProductionId": "LC-ya6zinv9"}' })
      expect(r, 0)
      assert.are.equal(3, json(r).Status)
      local file = t.work .. "/input.json"
      util.write_file(file, '{"ProductId": "R32ONVL0EU", "BatchProductionId": "LC-nope"}')
      r = t:run({ "DescribeBatchProduction", "--cli-input-json", "file://" .. file,
        "--BatchProductionId", "LC-ya6zinv9" })
      expect(r, 0)
      assert.are.equal(3, json(r).Status)
      r = t:run({ "DescribeBatchProduction", "--cli-input-json", '{"ProductID": "x"}' })
      expect(r, 2, "did you mean ProductId?")
    end)

    it("--generate-cli-skeleton prints every parameter of the action", function()
      for _, a in ipairs(actions.list) do
        local r = t:run({ a.name, "--generate-cli-skeleton" }, { no_endpoint = true })
        expect(r, 0)
        local v = json(r)
        for _, p in ipairs(a.params) do
          assert.is_not_nil(v[p.name], a.name .. "." .. p.name)
        end
      end
      assert.are.equal(0, emu:counters().requests)
    end)

    it("call --param-json reads JSON inline, from file://PATH and from @PATH", function()
      local file = t.work .. "/params.json"
      util.write_file(file, '{"ProductId": "R32ONVL0EU", "BatchProductionId": "LC-ya6zinv9"}')
      for _, v in ipairs({ "file://" .. file, "@" .. file }) do
        local r = t:run({ "call", "DescribeBatchProduction", "--param-json", v })
        expect(r, 0)
        assert.are.equal(3, json(r).Status)
      end
      local r = t:run({ "call", "DescribeBatchProduction", "--param-json", "@" .. t.work .. "/none.json" })
      expect(r, 2, "--param-json: cannot read")
    end)

    it("--version names the version, the core's and the interpreter", function()
      local r = t:run({ "--version" }, { no_endpoint = true })
      expect(r, 0)
      assert.are.equal("tciot " .. require("tencentcloud.iotexplorer")._VERSION .. " (core "
        .. require("tencentcloud.iotexplorer.core")._VERSION .. ") on " .. (type(jit) == "table" and jit.version
        or _VERSION) .. "\n", r.stdout)
    end)

    it("GetBatchProductionsList --all walks every page into one result with TotalCnt", function()
      local seeds = {}
      for i = 1, 44 do seeds[i] = { ProductId = PRODUCT, BatchCnt = i } end
      emu:seed(seeds)
      local first = json(t:run({ "GetBatchProductionsList", "--ProjectId", PROJECT }))
      local total = first.TotalCnt
      assert.is_true(total >= 44)
      local before = emu:counters().requests
      local r = t:run({ "GetBatchProductionsList", "--ProjectId", PROJECT, "--all" })
      expect(r, 0)
      local all = json(r)
      assert.are.equal(total, all.TotalCnt)
      assert.are.equal(total, #all.BatchProductions)
      local seen = {}
      for _, b in ipairs(all.BatchProductions) do
        assert.is_nil(seen[b.BatchProductionId], "listed twice: " .. b.BatchProductionId)
        seen[b.BatchProductionId] = true
      end
      assert.are.equal(math.ceil(total / 20), emu:counters().requests - before)
    end)

    it("suggests the nearest command or option", function()
      local r = t:run({ "DescribeBatchProductions", "--ProductId", PRODUCT })
      expect(r, 2, "unknown command 'DescribeBatchProductions' (did you mean DescribeBatchProduction?)")
      r = t:run({ "DescribeBatchProduction", "--ProductID", PRODUCT, "--BatchProductionId", "x" })
      expect(r, 2, "unknown option --ProductID (did you mean --ProductId?)")
      r = t:run(concat(DOC, { "--regoin", "ap-guangzhou" }))
      expect(r, 2, "(did you mean --region?)")
      assert.are.equal(0, emu:counters().requests)
    end)

    it("names --region and TENCENTCLOUD_REGION when no region is known", function()
      local r = t:run(DOC, { env = { TENCENTCLOUD_REGION = false } })
      expect(r, 2, "ClientError.InvalidParameter: ")
      assert.truthy(r.stderr:find("--region", 1, true), r.stderr)
      assert.truthy(r.stderr:find("TENCENTCLOUD_REGION", 1, true), r.stderr)
    end)

    it("--ca-file trusts a private CA", function()
      local tls = require("helpers.tls")
      local front = tls.start({ upstream = emu.url })
      local ok, err = pcall(function()
        local r = t:run(concat({ "--endpoint", front.urls.good }, DOC), { no_endpoint = true })
        expect(r, 3, "ClientError.NetworkError")
        r = t:run(concat({ "--endpoint", front.urls.good, "--ca-file", front.ca_file }, DOC), { no_endpoint = true })
        expect(r, 0)
        assert.are.equal(3, json(r).Status)
      end)
      front:stop()
      assert(ok, err)
    end)

    it("a bare HOST:PORT means https, and a failed handshake there suggests http://", function()
      local bare = emu.url:gsub("^http://", "")
      local r = t:run(concat({ "--endpoint", bare, "--timeout", "1" }, DOC), { no_endpoint = true })
      expect(r, 3, "tciot: ClientError.")
      assert.truthy(r.stderr:find("--endpoint http://" .. bare, 1, true), r.stderr)
      -- With a scheme given, no such hint.
      r = t:run(concat({ "--endpoint", "https://" .. bare, "--timeout", "1" }, DOC), { no_endpoint = true })
      expect(r, 3)
      assert.is_nil(r.stderr:find("--endpoint http://", 1, true), r.stderr)
    end)

    it("--verbose names the credential source and never a secret", function()
      local r = t:run(concat({ "--verbose" }, DOC))
      expect(r, 0)
      assert.truthy(r.stderr:find("credentials from environment", 1, true), r.stderr)
      assert.is_nil(r.stderr:find(emu.secret_key, 1, true))
    end)

    it("configure list shows the resolved settings, secrets masked", function()
      local r = t:run({ "configure", "list" }, { no_endpoint = true })
      expect(r, 0)
      assert.truthy(r.stdout:find("ap-guangzhou", 1, true), r.stdout)
      assert.truthy(r.stdout:find("****" .. emu.secret_key:sub(-4), 1, true), r.stdout)
      assert.is_nil(r.stdout:find(emu.secret_key, 1, true))
      r = t:run({ "configure", "show" }, { no_endpoint = true })
      expect(r, 2, "configure takes one word: list")
    end)

    it("takes region and output from tccli's configure file when nothing else says", function()
      util.execute("mkdir -p " .. util.shell_quote(t.home .. "/.tccli"))
      util.write_file(t.home .. "/.tccli/default.configure",
        '{"_sys_param": {"region": "ap-guangzhou", "output": "table"}}')
      local r = t:run(DOC, { env = { TENCENTCLOUD_REGION = false } })
      expect(r, 0)
      assert.matches("\n| Status +| 3 +|\n", r.stdout)
      os.remove(t.home .. "/.tccli/default.configure")
    end)

    it("--profile on the command line wins over TENCENTCLOUD_SECRET_*", function()
      util.execute("mkdir -p " .. util.shell_quote(t.home .. "/.tencentcloud"))
      util.write_file(t.home .. "/.tencentcloud/credentials", string.format(
        "[ci]\nsecret_id = %s\nsecret_key = %s\n", emu.secret_id, emu.secret_key))
      local r = t:run(concat({ "--profile", "ci" }, DOC),
        { env = { TENCENTCLOUD_SECRET_KEY = "wrong-key-0000000000000000000000" } })
      expect(r, 0)
      os.remove(t.home .. "/.tencentcloud/credentials")
    end)
  end)

  describe("stderr", function()
    it("escapes control characters from the service", function()
      emu:fault({ kind = "error", code = "InternalError\27[2J", message = "boom\27]0;owned\7\r\nnext\27[1A" })
      local r = t:run(DOC)
      expect(r, 1)
      for i = 1, #r.stderr do
        local b = r.stderr:byte(i)
        assert.is_true(b == 10 or (b >= 32 and b ~= 127), "control byte " .. b .. " in: " .. r.stderr)
      end
      assert.truthy(r.stderr:find("InternalError\\x1b[2J", 1, true), r.stderr)
      assert.truthy(r.stderr:find("boom\\x1b]0;owned\\x07\\r\\nnext", 1, true), r.stderr)
      -- One line of error: the message's newline did not start another.
      local _, lines = r.stderr:gsub("\n", "")
      assert.are.equal(1, lines, r.stderr)
    end)

    it("says when a create may have happened, and how to check", function()
      emu:fault({ kind = "reset", action = "CreateBatchProduction" })
      local r = t:run({ "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "0",
        "--GenerationMethod", "0", "--BatchCnt", "2" })
      expect(r, 3, "may or may not have been created")
      assert.truthy(r.stderr:find("tciot GetBatchProductionsList --ProjectId " .. PROJECT
        .. " --region ap-guangzhou --all", 1, true), r.stderr)
      -- A create refused before it left says nothing of the kind.
      r = t:run({ "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "0",
        "--GenerationMethod", "0", "--BatchCnt", "2" }, { env = { TENCENTCLOUD_SECRET_ID = false,
        TENCENTCLOUD_SECRET_KEY = false, TENCENTCLOUD_CREDENTIALS_FILE = t.work .. "/none" } })
      expect(r, 2)
      assert.is_nil(r.stderr:find("may or may not", 1, true))
    end)
  end)

  describe("--wait", function()
    local function seed(b)
      b.ProductId = b.ProductId or PRODUCT
      return emu:seed(b)[1].BatchProductionId
    end

    it("shows a failed poll as retrying: <code>, as a plain line off a terminal", function()
      local id = seed({ BatchCnt = 2 })
      -- The client retries reads itself (3 attempts); 6 failures make two polls fail.
      emu:fault({ kind = "status", status = 503, action = "DescribeBatchProduction", count = 6 })
      local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id, "--wait",
        "--poll-interval", "0.1", "--max-poll-interval", "0.2" })
      expect(r, 0)
      assert.matches("tciot: " .. id:gsub("%-", "%%-") .. ": waiting for the first answer, retrying: InternalError, "
        .. "%d+%.%ds\n", r.stderr)
      assert.matches("Status 3 %(done%)", r.stderr)
    end)

    it("says on a deadline whether the batch was not done or the service did not answer", function()
      local id = seed({ BatchCnt = 100 })
      emu:set({ status_step_seconds = 30 })
      local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id, "--wait",
        "--deadline", "1", "--poll-interval", "0.2" })
      expect(r, 3, "ClientError.Timeout: batch " .. id .. " was not done within the deadline of 1s (last seen: "
        .. "Status ")
      emu:fault({ kind = "status", status = 503, action = "DescribeBatchProduction", count = -1 })
      r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id, "--wait",
        "--deadline", "1.5", "--poll-interval", "0.2" })
      expect(r, 3, "ClientError.Timeout: the service did not answer for batch " .. id)
      assert.truthy(r.stderr:find("last error: InternalError", 1, true), r.stderr)
    end)

    it("ticks the elapsed time every second on a terminal, within its width", function()
      local id = seed({ BatchCnt = 100 })
      emu:set({ status_step_seconds = 30 })
      local r = t:run({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id, "--wait",
        "--deadline", "3.5", "--poll-interval", "5" }, { tty = true, columns = 40, env = { COLUMNS = "40" } })
      expect(r, 3)
      local shown = {}
      for seg in r.stdout:gmatch("\r\27%[K([^\r\n]*)") do
        if seg ~= "" then
          shown[#shown + 1] = seg
          assert.is_true(#seg <= 39, "wider than the terminal: '" .. seg .. "'")
        end
      end
      -- One redraw a second while the single pause runs: at least 3 within 3.5 s.
      assert.is_true(#shown >= 3, r.stdout)
      assert.matches("~$", shown[#shown])
    end)
  end)
end)

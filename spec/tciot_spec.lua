-- tciot as users run it: the real script in a subprocess, installed with `make install` into a
-- temporary DESTDIR for the interpreter running this spec (and once in-tree), against the local
-- API emulator. Every command, both output formats, each exit code, --wait and --download through
-- their failures, and a usage error for each malformed invocation.
local cjson = require("cjson.safe")
local emulator = require("helpers.emulator")
local util = require("helpers.util")

local LUA = util.INTERPRETER
local ROOT = util.ROOT
local PRODUCT, PROJECT = "R32ONVL0EU", "PROJECT0001"
local DOC = { "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "LC-ya6zinv9" }

local quote, read, write, sh = util.shell_quote, util.read_file, util.write_file, util.execute

local concat = require("helpers.tciot").concat

local listing = util.listing

describe("tciot", function()
  local emu, work, home, installed

  -- Runs tciot with a clean environment (emulator credentials and region unless env says
  -- otherwise; false removes a variable). opts: env, tool ("installed" default, or "tree"),
  -- no_endpoint, tty (run under script(1) so stderr is a terminal).
  local function tciot(args, opts)
    opts = opts or {}
    local env = {
      PATH = "/usr/local/bin:/usr/bin:/bin", HOME = home, LANG = "C",
      TENCENTCLOUD_SECRET_ID = emu.secret_id, TENCENTCLOUD_SECRET_KEY = emu.secret_key,
      TENCENTCLOUD_REGION = "ap-guangzhou",
    }
    for k, v in pairs(opts.env or {}) do env[k] = v or nil end
    local words = { "env", "-i" }
    for k, v in pairs(env) do words[#words + 1] = quote(k .. "=" .. v) end
    if opts.tool == "tree" then
      words[#words + 1] = LUA
      words[#words + 1] = quote(ROOT .. "/bin/tciot")
    else
      words[#words + 1] = quote(installed)
    end
    if not opts.no_endpoint then
      words[#words + 1] = "--endpoint"
      words[#words + 1] = quote(emu.url)
    end
    for _, a in ipairs(args) do words[#words + 1] = quote(a) end
    local cmd = table.concat(words, " ")
    local out, err = work .. "/stdout", work .. "/stderr"
    os.remove(out); os.remove(err)
    if opts.tty then
      -- script(1) gives tciot a terminal for stdout and stderr (both land in `out`) and exits with its status.
      cmd = "script -qec " .. quote(cmd .. " 2>&1") .. " /dev/null"
    end
    local _, _, code = util.run(cmd .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err))
    return { code = code, stdout = read(out) or "", stderr = read(err) or "" }
  end

  local function json(r)
    local v = cjson.decode(r.stdout)
    assert(type(v) == "table", "stdout is not JSON: " .. r.stdout .. "\nstderr: " .. r.stderr)
    return v
  end

  local function seed(b)
    b.ProductId = b.ProductId or PRODUCT
    return emu:seed(b)[1].BatchProductionId
  end

  local function expect(r, code, stderr_pattern)
    assert.are.equal(code, r.code, "exit code; stderr: " .. r.stderr .. "\nstdout: " .. r.stdout)
    if stderr_pattern then
      assert.truthy(r.stderr:find(stderr_pattern, 1, true), "stderr lacks '" .. stderr_pattern .. "': " .. r.stderr)
    end
  end

  setup(function()
    emu = emulator.start({ fixture = { status_step_seconds = 0.15 } })
    work = util.tmpdir()
    assert(sh("mkdir -p " .. quote(work .. "/home") .. " " .. quote(work .. "/out")))
    home = work .. "/home"
    -- The real installed layout: make install into a private DESTDIR for this interpreter.
    local log = work .. "/install.log"
    local ok = sh(string.format("make -s --no-print-directory install DESTDIR=%s PREFIX=/usr LUA=%s >%s 2>&1",
      quote(work .. "/root"), LUA, quote(log)))
    assert(ok, "make install failed:\n" .. (read(log) or ""))
    installed = work .. "/root/usr/bin/tciot"
  end)

  teardown(function()
    if emu then emu:stop() end
    util.rm_rf(work)
  end)

  before_each(function()
    emu:reset()
    emu:set({ download_ttl = 900, status_step_seconds = 0.15 })
  end)

  describe("installation", function()
    it("runs under the interpreter it was installed for", function()
      local first = read(installed):match("^[^\n]*")
      assert.matches("^#!/.*/" .. LUA .. "$", first)
      local r = tciot({ "--help" }, { no_endpoint = true })
      expect(r, 0)
      assert.matches("usage: tciot", r.stdout)
    end)

    it("runs in the source tree as `" .. LUA .. " bin/tciot`", function()
      local r = tciot(DOC, { tool = "tree" })
      expect(r, 0)
      assert.are.equal(3, json(r).Status)
    end)
  end)

  describe("help", function()
    it("lists the commands and the exit codes", function()
      for _, args in ipairs({ { "--help" }, { "-h" }, { "help" } }) do
        local r = tciot(args, { no_endpoint = true })
        expect(r, 0)
        for _, cmd in ipairs({ "DescribeBatchProduction", "CreateBatchProduction", "GetBatchProductionsList",
          "call", "emulator" }) do
          assert.truthy(r.stdout:find("  " .. cmd, 1, true), cmd)
        end
        assert.truthy(r.stdout:find("Exit codes:", 1, true))
        assert.are.equal("", r.stderr)
      end
    end)

    it("explains every command with --help, even next to other options", function()
      local cases = {
        { { "DescribeBatchProduction", "--help" }, "--download FILE|-" },
        { { "CreateBatchProduction", "--help" }, "--GenerationQRCode 0|1" },
        { { "GetBatchProductionsList", "--ProjectId", "P", "--help" }, "--Limit N" },
        { { "call", "--help" }, "--param-json JSON" },
        { { "emulator", "--help" }, "--fixture FILE" },
        { { "help", "DescribeBatchProduction" }, "--wait" },
        { { "DescribeBatchProduction", "--ProductId", "--help" }, "--BatchProductionId ID" },
      }
      for _, case in ipairs(cases) do
        local r = tciot(case[1], { no_endpoint = true })
        expect(r, 0)
        local topic = case[1][1] == "help" and case[1][2] or case[1][1]
        assert.truthy(r.stdout:find("^usage: tciot " .. topic .. " "), r.stdout)
        assert.truthy(r.stdout:find(case[2], 1, true), case[2] .. " in:\n" .. r.stdout)
      end
      assert.are.equal(0, emu:counters().requests)
    end)
  end)

  describe("commands", function()
    it("DescribeBatchProduction prints the Response as pretty JSON with sorted keys", function()
      local r = tciot(DOC)
      expect(r, 0)
      assert.are.equal("", r.stderr)
      local res = json(r)
      assert.are.equal(3, res.BatchCnt)
      assert.are.equal(1572233486, res.CreateTime)
      assert.are.equal(3, res.Status)
      assert.are.equal("", res.LastFailedReason)
      assert.matches("^http://127%.0%.0%.1:%d+/_download/R32ONVL0EU_LC%-ya6zinv9%.csv%?", res.DownloadUrl)
      assert.is_string(res.RequestId)
      assert.is_nil(res.Response)
      local keys = {}
      for key in r.stdout:gmatch('\n    "(%w+)":') do keys[#keys + 1] = key end
      assert.are.same({ "BatchCnt", "BurnMethod", "CreateTime", "DownloadUrl", "GenerationMethod",
        "LastFailedReason", "RequestId", "Status", "SuccessCount", "UploadUrl" }, keys)
      assert.matches('^{\n    "BatchCnt": 3,\n', r.stdout)
      assert.matches("\n}\n$", r.stdout)
    end)

    it("DescribeBatchProduction prints a table with --output table", function()
      local r = tciot(concat({ "--output", "table" }, DOC))
      expect(r, 0)
      assert.matches("^%+%-+%+%-+%+\n", r.stdout)
      assert.matches("\n| BatchCnt +| 3 +|\n", r.stdout)
      assert.matches("\n| Status +| 3 +|\n", r.stdout)
      assert.matches("\n| LastFailedReason +| +|\n", r.stdout)
      -- Global options may also follow the command.
      local r2 = tciot(concat(DOC, { "--output=table" }))
      expect(r2, 0)
      assert.are.equal(r.stdout:gsub("%x+%-[%x-]+", "ID"):gsub("expires=%d+&sig=%x+", ""),
        r2.stdout:gsub("%x+%-[%x-]+", "ID"):gsub("expires=%d+&sig=%x+", ""))
    end)

    it("CreateBatchProduction creates a batch that GetBatchProductionsList then lists", function()
      local r = tciot({ "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT,
        "--BurnMethod", "1", "--GenerationMethod", "0", "--BatchCnt", "7", "--GenerationQRCode", "1" })
      expect(r, 0)
      local created = json(r)
      assert.matches("^LC%-", created.BatchProductionId)
      assert.are.equal(PROJECT, created.ProjectId)
      assert.are.equal(PRODUCT, created.ProductId)

      r = tciot({ "GetBatchProductionsList", "--ProjectId", PROJECT, "--Limit", "1" })
      expect(r, 0)
      local list = json(r)
      assert.are.equal(1, #list.BatchProductions)
      assert.are.equal(created.BatchProductionId, list.BatchProductions[1].BatchProductionId)
      assert.are.equal(PRODUCT, list.BatchProductions[1].ProductId)
      assert.is_true(list.TotalCnt >= 2)

      r = tciot({ "GetBatchProductionsList", "--ProjectId", PROJECT, "--Offset", "0", "--Limit", "2",
        "--output", "table" })
      expect(r, 0)
      assert.truthy(r.stdout:find("| TotalCnt ", 1, true))
      assert.truthy(r.stdout:find("\nBatchProductions (2)\n", 1, true))
      assert.matches("\n| BatchProductionId +| BurnMethod | CreateTime +| ProductId +|", r.stdout)
      assert.truthy(r.stdout:find("| " .. created.BatchProductionId .. " ", 1, true))

      emu:add_product({ ProductId = "EMPTYPROD1", ProjectId = "EMPTY000" })   -- a project without batches
      r = tciot({ "GetBatchProductionsList", "--ProjectId", "EMPTY000" })
      expect(r, 0)
      assert.matches('"BatchProductions": %[%]', r.stdout)
    end)

    it("call sends any action with --param-json", function()
      local r = tciot({ "call", "GetBatchProductionsList", "--param-json", '{"ProjectId": "' .. PROJECT .. '"}' })
      expect(r, 0)
      assert.is_number(json(r).TotalCnt)
      r = tciot({ "call", "DescribeBatchProduction", "--output", "table",
        "--param-json", '{"ProductId": "R32ONVL0EU", "BatchProductionId": "LC-ya6zinv9"}' })
      expect(r, 0)
      assert.matches("\n| BatchCnt +| 3 +|\n", r.stdout)
    end)

    it("reads credentials from a profile file with --profile", function()
      local file = work .. "/credentials"
      write(file, "[factory]\nsecret_id = " .. emu.secret_id .. "\nsecret_key = " .. emu.secret_key .. "\n")
      local r = tciot(concat({ "--profile", "factory" }, DOC), { env = {
        TENCENTCLOUD_SECRET_ID = false, TENCENTCLOUD_SECRET_KEY = false, TENCENTCLOUD_CREDENTIALS_FILE = file } })
      expect(r, 0)
      assert.are.equal(3, json(r).Status)
    end)

    it("--verbose prints one line per attempt and never a secret", function()
      emu:fault({ kind = "status", status = 503, count = 1 })
      local r = tciot(concat({ "--verbose" }, DOC))
      expect(r, 0)
      local lines = {}
      for line in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(2, #lines, r.stderr)
      assert.matches("^tciot: DescribeBatchProduction attempt 1: InternalError %(HTTP 503%) retryable in ", lines[1])
      assert.matches("^tciot: DescribeBatchProduction attempt 2: ok in %d+%.%d+s .*RequestId [%x-]+ "
        .. "credentials from environment", lines[2])
      assert.is_nil(r.stderr:find(emu.secret_key, 1, true))
      assert.is_nil(r.stderr:find("sig=", 1, true))
    end)

    it("tciot emulator runs the emulator in the foreground", function()
      local fixture = work .. "/fixture.json"
      write(fixture, '{"status_step_seconds": 0, "batches": [{"BatchProductionId": "LC-fromfile", '
        .. '"ProductId": "R32ONVL0EU", "BatchCnt": 2}]}')
      local out, pidfile = work .. "/emulator.out", work .. "/emulator.pid"
      local pipe = io.popen(string.format("echo $$ >%s; exec env -u LD_PRELOAD %s %s emulator --port 0 --fixture %s "
        .. "--exit-on-stdin-eof >%s 2>&1", quote(pidfile), LUA, quote(installed), quote(fixture), quote(out)), "w")
      local url
      for _ = 1, 200 do
        url = (read(out) or ""):match("^EMULATOR_READY (http://127%.0%.0%.1:%d+)\n.*_ENDPOINT=[^\n]*\n")
        if url then break end
        sh("sleep 0.02")
      end
      assert.truthy(url, read(out))
      -- Then the shell lines that point the library and tciot at it.
      local exports = read(out)
      assert.truthy(exports:find("\nexport TENCENTCLOUD_IOTEXPLORER_ENDPOINT=" .. url .. "\n", 1, true), exports)
      assert.truthy(exports:find("\nexport TENCENTCLOUD_REGION=ap-guangzhou\n", 1, true), exports)
      assert.truthy(exports:find("\nexport TENCENTCLOUD_SECRET_ID=" .. emu.secret_id .. "\n", 1, true), exports)
      local r = tciot({ "--endpoint", url, "DescribeBatchProduction", "--ProductId", PRODUCT,
        "--BatchProductionId", "LC-fromfile" }, { no_endpoint = true })
      pipe:close()   -- stdin closes: the emulator stops
      expect(r, 0)
      assert.are.equal(2, json(r).SuccessCount)
      local pid = read(pidfile):match("%d+")
      for _ = 1, 100 do
        if not util.proc_state(pid) then break end
        sh("sleep 0.02")
      end
      local state = util.proc_state(pid)
      assert.is_true(state == nil or state == "Z", "the emulator is still running")
    end)
  end)

  describe("--wait", function()
    it("polls through every status, with plain progress lines when stderr is not a terminal", function()
      -- Steps long enough that a slow start on a loaded machine still sees Status 0.
      emu:set({ status_step_seconds = 0.5 })
      local id = seed({ BatchCnt = 4 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "0.03", "--max-poll-interval", "0.05", "--deadline", "10" })
      expect(r, 0)
      local res = json(r)
      assert.are.equal(3, res.Status)
      assert.are.equal(4, res.SuccessCount)
      local statuses = {}
      for line in r.stderr:gmatch("[^\n]+") do
        local status = line:match("^tciot: " .. id:gsub("%-", "%%-") .. ": Status (%d) %(")
        assert.truthy(status, "unexpected line: " .. line)
        if statuses[#statuses] ~= tonumber(status) then statuses[#statuses + 1] = tonumber(status) end
      end
      assert.are.same({ 0, 1, 2, 3 }, statuses)
      assert.matches("Status 3 %(done%), 4/4 devices, %d+%.%ds\n$", r.stderr)
      assert.is_nil(r.stderr:find("\r", 1, true))
    end)

    it("redraws one progress line on a terminal", function()
      if not sh("command -v script >/dev/null 2>&1") then
        pending("script(1) is not installed")
        return
      end
      emu:set({ status_step_seconds = 0.5 })
      local id = seed({ BatchCnt = 2 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "0.03", "--download", work .. "/out/tty.csv" }, { tty = true })
      expect(r, 0)
      assert.truthy(r.stdout:find("\r\27[K" .. id .. ": Status 0 (created)", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\r\27[K" .. id .. ": Status 3 (done), 2/2 devices", 1, true))
      assert.truthy(r.stdout:find("[##############################] 100%", 1, true))
      assert.truthy(r.stdout:find("tciot: saved " .. #read(work .. "/out/tty.csv") .. " bytes", 1, true))
      os.remove(work .. "/out/tty.csv")
      -- A failure ends the progress line before the error is printed.
      id = seed({ BatchCnt = 2, fail_reason = "bad names" })
      r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "0.03" }, { tty = true })
      expect(r, 4)
      assert.matches("Status 1 %(processing%), 1/2 devices, %d+%.%ds\r?\ntciot: ClientError.BatchFailed: ", r.stdout)
    end)

    it("exits 4 when the batch fails, with the reason on stderr", function()
      local id = seed({ BatchCnt = 4, fail_reason = "upload file has duplicate device names" })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "0.03" })
      expect(r, 4, "tciot: ClientError.BatchFailed: batch " .. id .. " failed: upload file has duplicate device names")
      assert.truthy(r.stderr:find("Status 1 (processing), 2/4 devices", 1, true))
      assert.are.equal("", r.stdout)
    end)

    it("exits 3 past --deadline", function()
      local id = seed({ BatchCnt = 1, Status = 1 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--deadline", "0.3", "--poll-interval", "0.05" })
      expect(r, 3, "ClientError.Timeout: batch " .. id .. " was not done within the deadline of 0.3s")
      assert.are.equal("", r.stdout)
    end)
  end)

  describe("--download", function()
    local out
    before_each(function()
      out = work .. "/out"
      sh("rm -f " .. quote(out) .. "/*")
    end)

    local function expected_csv(id)
      local res = select(3, emu:call("DescribeBatchProduction", { ProductId = PRODUCT, BatchProductionId = id }))
      local status, _, body = emulator.http(emu.host, emu.port,
        { path = res.Response.DownloadUrl:match("^http://[^/]+(/.*)$") })
      assert.are.equal(200, status)
      return body
    end

    it("saves the CSV to FILE and prints the Response", function()
      local id = seed({ BatchCnt = 6, Status = 3 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--download", out .. "/devices.csv" })
      expect(r, 0)
      local csv = read(out .. "/devices.csv")
      assert.are.equal(expected_csv(id), csv)
      assert.are.equal(3, json(r).Status)
      assert.are.equal("tciot: saved " .. #csv .. " bytes to " .. out .. "/devices.csv\n", r.stderr)
      assert.are.same({ "devices.csv" }, listing(out))
    end)

    it("waits, then downloads, in the source tree too", function()
      local id = seed({ BatchCnt = 3 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--wait", "--poll-interval", "0.03", "--download", out .. "/devices.csv" }, { tool = "tree" })
      expect(r, 0)
      assert.are.equal(expected_csv(id), read(out .. "/devices.csv"))
    end)

    it("writes the CSV alone to stdout with -", function()
      local id = seed({ BatchCnt = 3, Status = 3 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--download", "-" }, { env = { TMPDIR = out } })
      expect(r, 0)
      assert.are.equal(expected_csv(id), r.stdout)
      assert.are.equal("", r.stderr)
      assert.are.same({}, listing(out))
    end)

    it("gets a fresh link when the first one has expired", function()
      -- The first answer arrives after its own link has expired (ttl 1.5 s, sent 1.6 s late).
      emu:set({ download_ttl = 1.5 })
      emu:fault({ kind = "delay", seconds = 1.6, action = "DescribeBatchProduction" })
      local r = tciot({ "--verbose", "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId",
        "LC-ya6zinv9", "--download", out .. "/devices.csv" })
      expect(r, 0)
      assert.matches("download attempt 1: ClientError.HttpStatusCodeError %(HTTP 403%)", r.stderr)
      assert.matches("download attempt 2: ok in %d+%.%d+s %d+ bytes", r.stderr)
      assert.matches("^ProductId,DeviceName,DeviceSecret\n", read(out .. "/devices.csv"))
      assert.are.equal(2, emu:counters().downloads)
    end)

    it("exits 4 when every link has expired, leaving no file", function()
      emu:set({ download_ttl = -60 })
      local r = tciot(concat(DOC, { "--download", out .. "/devices.csv" }))
      expect(r, 4, "tciot: ClientError.HttpStatusCodeError: HTTP status 403 from the download URL")
      assert.are.equal("", r.stdout)
      assert.are.same({}, listing(out))
      assert.are.equal(3, emu:counters().downloads)
    end)

    it("exits 4 when the connection is cut mid-transfer, leaving no partial file", function()
      local id = seed({ BatchCnt = 5000, Status = 3 })
      -- Cut every time: the first transfer and both retries.
      emu:fault({ kind = "truncate", action = "_download", count = 3 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--download", out .. "/devices.csv" })
      expect(r, 4, "tciot: ClientError.NetworkError:")
      assert.are.same({}, listing(out))
      assert.are.equal(3, emu:counters().faults_applied)
      -- The same with the CSV going to stdout: nothing printed, no temporary file left in $TMPDIR either.
      emu:fault({ kind = "truncate", action = "_download", count = 3 })
      r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id, "--download", "-" },
        { env = { TMPDIR = out } })
      expect(r, 4, "ClientError.NetworkError")
      assert.are.equal("", r.stdout)
      assert.are.same({}, listing(out))
    end)

    it("exits 4 for a batch that is not done yet", function()
      local id = seed({ BatchCnt = 2, Status = 1 })
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", id,
        "--download", out .. "/devices.csv" })
      expect(r, 4, "ClientError.BatchNotReady: batch " .. id .. " has no device file yet (Status 1 (processing)")
      assert.are.same({}, listing(out))
    end)

    it("exits 4 when the file cannot be written", function()
      local r = tciot(concat(DOC, { "--download", out .. "/missing/devices.csv" }))
      expect(r, 4, "ClientError.FileError")
    end)
  end)

  describe("exit codes", function()
    it("1: the service answered with an API error, printed with its RequestId", function()
      local r = tciot({ "DescribeBatchProduction", "--ProductId", PRODUCT, "--BatchProductionId", "LC-missing0" })
      expect(r, 1, "tciot: ResourceNotFound.BatchProductionNotExist: ")
      assert.matches("%(RequestId: [%x-]+%)\n$", r.stderr)
      assert.are.equal("", r.stdout)
      r = tciot({ "call", "NoSuchAction", "--param-json", "{}" })
      expect(r, 1, "tciot: InvalidAction: ")
      r = tciot({ "CreateBatchProduction", "--ProjectId", "OTHERPROJ", "--ProductId", PRODUCT,
        "--BurnMethod", "0", "--GenerationMethod", "0", "--BatchCnt", "1" })
      expect(r, 1, "ResourceNotFound.ProjectNotExist")
    end)

    it("1: an HTTP error status or a body that is not JSON", function()
      emu:fault({ kind = "html", status = 502, count = 3 })
      local r = tciot(DOC)
      expect(r, 1, "tciot: ClientError.HttpStatusCodeError: ")
      emu:fault({ kind = "malformed_json" })
      r = tciot(DOC)
      expect(r, 1, "tciot: ClientError.ParseJsonError: ")
    end)

    it("2: client-side invalid parameters and missing credentials or region", function()
      local r = tciot(concat({ "--region", "ap-singapore" }, DOC))
      expect(r, 2, "ClientError.InvalidParameter: DescribeBatchProduction is not available in region ap-singapore")
      assert.is_nil(r.stderr:find("usage:", 1, true))
      r = tciot({ "DescribeBatchProduction", "--ProductId", "", "--BatchProductionId", "x" })
      expect(r, 2, "ClientError.InvalidParameter: ProductId must not be empty")
      r = tciot(concat({ "--endpoint", "file:///etc/passwd" }, DOC), { no_endpoint = true })
      expect(r, 2, "ClientError.InvalidParameter: endpoint must be http(s)://host[:port]")
      r = tciot(concat({ "--language", "fr-FR" }, DOC))
      expect(r, 2, "ClientError.InvalidParameter: language")
      r = tciot(DOC, { env = { TENCENTCLOUD_REGION = false } })
      expect(r, 2, "ClientError.InvalidParameter: no region given: use --region REGION or set TENCENTCLOUD_REGION")
      r = tciot(DOC, { env = { TENCENTCLOUD_SECRET_ID = false, TENCENTCLOUD_SECRET_KEY = false,
        TENCENTCLOUD_CREDENTIALS_FILE = work .. "/no-such-file" } })
      expect(r, 2, "ClientError.CredentialError: ")
      r = tciot(DOC, { env = { TENCENTCLOUD_SECRET_KEY = "wrong-key-0000000000000000000000" } })
      expect(r, 1, "AuthFailure.SignatureFailure")
      assert.are.equal(1, emu:counters().requests)
    end)

    it("3: a network failure or a request timeout", function()
      local port = util.dead_port()
      local r = tciot(concat({ "--endpoint", "http://127.0.0.1:" .. port }, DOC), { no_endpoint = true })
      expect(r, 3, "tciot: ClientError.NetworkError: ")
      emu:fault({ kind = "delay", seconds = 1, count = 3 })
      r = tciot(concat({ "--timeout", "0.2" }, DOC))
      expect(r, 3, "tciot: ClientError.Timeout: ")
    end)

    it("2: a usage error for each malformed invocation, with the usage line", function()
      local cases = {
        { {}, "no command given" },
        { { "DescribeBatchProductions" }, "unknown command 'DescribeBatchProductions'" },
        { { "--bogus", "DescribeBatchProduction" }, "unknown option --bogus" },
        { concat(DOC, { "--Bogus", "1" }), "unknown option --Bogus" },
        { { "DescribeBatchProduction", "--ProductId", PRODUCT }, "--BatchProductionId is required" },
        { { "DescribeBatchProduction", "--BatchProductionId", "LC-ya6zinv9" }, "--ProductId is required" },
        { { "DescribeBatchProduction", "--ProductId" }, "--ProductId needs a value" },
        { { "DescribeBatchProduction", "--ProductId", "--BatchProductionId", "x" }, "--ProductId needs a value" },
        { concat(DOC, { "--ProductId", "X" }), "--ProductId is given twice" },
        { concat(DOC, { "extra" }), "unexpected argument 'extra'" },
        { concat(DOC, { "--deadline", "5" }), "--deadline only applies with --wait" },
        { concat(DOC, { "--poll-interval", "1" }), "--poll-interval only applies with --wait" },
        { concat(DOC, { "--wait", "--deadline", "soon" }), "--deadline expects a positive number" },
        { concat(DOC, { "--wait=yes" }), "--wait takes no value" },
        { concat(DOC, { "--download", "" }), "--download needs a file name" },
        { concat(DOC, { "--download" }), "--download needs a value" },
        { concat(DOC, { "--output", "yaml" }), "--output expects json, table, text" },
        { concat(DOC, { "--timeout", "0" }), "--timeout expects a positive number" },
        { { "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "one",
          "--GenerationMethod", "0" }, "--BurnMethod expects an integer, got 'one'" },
        { { "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "0" },
          "--GenerationMethod is required" },
        { { "CreateBatchProduction", "--ProjectId", PROJECT, "--ProductId", PRODUCT, "--BurnMethod", "0",
          "--GenerationMethod", "0", "--GenerationQRCode", "yes" }, "--GenerationQRCode expects an integer" },
        { { "GetBatchProductionsList" }, "--ProjectId is required" },
        { { "GetBatchProductionsList", "--ProjectId", PROJECT, "--Limit", "1.5" }, "--Limit expects an integer" },
        { { "call" }, "call needs an action name" },
        { { "call", "DescribeProduct", "Extra" }, "unexpected argument 'Extra'" },
        { { "call", "DescribeProduct", "--param-json", "{not json" }, "--param-json expects a JSON object" },
        { { "call", "DescribeProduct", "--param-json", "[1, 2]" }, "--param-json expects a JSON object" },
        { { "emulator", "--port", "http" }, "--port expects a port number" },
        { { "emulator", "--port", "70000" }, "--port expects a port number" },
        { { "help", "Nope" }, "unknown command 'Nope'" },
      }
      for _, case in ipairs(cases) do
        local r = tciot(case[1])
        expect(r, 2, "tciot: " .. case[2])
        assert.truthy(r.stderr:find("\nusage: tciot ", 1, true), "no usage line for " .. case[2])
        assert.are.equal("", r.stdout, case[2])
      end
      assert.are.equal(0, emu:counters().requests)
    end)
  end)
end)

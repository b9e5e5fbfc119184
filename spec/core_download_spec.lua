-- core.download against a real file server on loopback (spec/helpers/range_server.lua): device files are
-- private from the first byte (0600 under umask 022, a random name next to the target, nothing named for
-- standard output), only complete files reach the target, the size cap, and resuming a cut transfer.
local core = require("tencentcloud.iotexplorer.core")
local range_server = require("helpers.range_server")
local util = require("helpers.util")

local SIZE = 200000

-- The mode of path as octal digits ("600"), or nil when there is no such file.
local function mode_of(path)
  local ok, out = util.run("stat -c %a " .. util.shell_quote(path))
  return ok and out:match("%d+") or nil
end

-- A child under umask 022 that downloads url to path ("-": stdout) with core.download; its output.
local CHILD = [[
local core = require("tencentcloud.iotexplorer.core")
local url, path, mode = arg[1], arg[2], tonumber(arg[3] or "", 8)
local s = assert(core.new_session{})
local out, err = core.download(s, { url = url, path = path, mode = mode })
s:close()
if out then io.stderr:write("ok ", out.bytes, "\n") else io.stderr:write("err ", err.code, " ", err.message, "\n") end
]]

describe("core.download", function()
  local files, dir, script, session

  setup(function()
    files = range_server.start{ size = SIZE }
    dir = util.tmpdir()
    script = dir .. "/child.lua"
    util.write_file(script, CHILD)
    session = assert(core.new_session{ timeout = 10 })
  end)
  teardown(function()
    session:close()
    files:stop()
    util.rm_rf(dir)
  end)
  before_each(function() files:reset() end)

  local function in_child(url, path, mode, env)
    local ok, out = util.run("umask 022 && cd " .. util.shell_quote(util.ROOT) .. " && "
      .. util.lua_command(script, { url, path, mode }, { env = env }) .. " 2>" .. util.shell_quote(dir .. "/stderr"))
    return ok, out, util.read_file(dir .. "/stderr") or ""
  end

  -- Every name in the folder that is not the child script or its stderr.
  local function names(folder)
    local out = {}
    for _, name in ipairs(util.listing(folder)) do
      if name ~= "child.lua" and name ~= "stderr" then out[#out + 1] = name end
    end
    return out
  end

  it("creates the file 0600 under umask 022, with the whole body", function()
    local path = dir .. "/devices.csv"
    local ok, _, err = in_child(files.url .. "/whole", path)
    assert.is_true(ok)
    assert.are.equal("ok " .. SIZE .. "\n", err)
    assert.are.equal("600", mode_of(path))
    assert.are.equal(files.body, util.read_file(path))
    assert.are.same({ "devices.csv" }, names(dir))
    os.remove(path)
  end)

  it("keeps an existing target's stricter mode, never looser than 0600, unless mode is given", function()
    local path = dir .. "/devices.csv"
    for _, case in ipairs{ { "600", nil, "600" }, { "400", nil, "400" }, { "644", nil, "600" },
                           { "666", nil, "600" }, { "600", "640", "640" } } do
      util.write_file(path, "old\n")
      util.check_output("chmod " .. case[1] .. " " .. util.shell_quote(path))
      local ok, _, err = in_child(files.url .. "/whole", path, case[2])
      assert.is_true(ok)
      assert.are.equal("ok " .. SIZE .. "\n", err)
      assert.are.equal(case[3], mode_of(path), "was " .. case[1] .. ", mode " .. tostring(case[2]))
      assert.are.equal(files.body, util.read_file(path))
    end
    assert.are.same({ "devices.csv" }, names(dir))
    os.remove(path)
  end)

  it("writes \"-\" to standard output once complete, with no file in /tmp or $TMPDIR", function()
    local tmpdir = util.tmpdir()
    local function dot_tciot() local t = {} for _, n in ipairs(util.listing("/tmp")) do
      if n:find("^%.tciot%-") then t[n] = true end end return t end
    local before_tmp = dot_tciot()
    local ok, out, err = in_child(files.url .. "/whole", "-", nil, { TMPDIR = tmpdir })
    local after_tmp = dot_tciot()
    local left = util.listing(tmpdir)
    util.rm_rf(tmpdir)
    assert.is_true(ok)
    assert.are.equal("ok " .. SIZE .. "\n", err)
    assert.are.equal(files.body, out)
    assert.are.same({}, left)
    for n in pairs(after_tmp) do assert.is_true(before_tmp[n], "left in /tmp: " .. n) end
    assert.are.same({}, names(dir))
  end)

  it("accepts any valid final name: a 254-byte one", function()
    local name = ("d"):rep(250) .. ".csv"
    local path = dir .. "/" .. name
    local out, err = core.download(session, { url = files.url .. "/whole", path = path })
    assert.is_nil(err)
    assert.are.equal(SIZE, out.bytes)
    assert.are.same({ name }, names(dir))
    os.remove(path)
  end)

  it("refuses a body over max_bytes with ClientError.ResponseTooLarge, leaving nothing", function()
    local path = dir .. "/devices.csv"
    local out, err = core.download(session, { url = files.url .. "/whole", path = path, max_bytes = 1000 })
    assert.is_nil(out)
    assert.are.equal("ClientError.ResponseTooLarge", err.code)
    assert.truthy(err.message:find("1000", 1, true), err.message)
    assert.are.same({}, names(dir))
  end)

  it("ClientError.FileError names the path it could not write", function()
    local path = dir .. "/no/such/folder/devices.csv"
    local out, err = core.download(session, { url = files.url .. "/whole", path = path })
    assert.is_nil(out)
    assert.are.equal("ClientError.FileError", err.code)
    assert.are.equal(path, err.path)
    assert.truthy(err.message:find(path, 1, true), err.message)
  end)

  it("leaves nothing after a cut transfer unless asked to keep it", function()
    local path = dir .. "/devices.csv"
    local out, err = core.download(session, { url = files.url .. "/cut-always", path = path })
    assert.is_nil(out)
    assert.are.equal("ClientError.NetworkError", err.code)
    assert.is_nil(err.partial_bytes)
    assert.are.same({}, names(dir))
  end)

  it("resumes a cut transfer with Range when the server answers 206", function()
    local path = dir .. "/devices.csv"
    local out, err = core.download(session, { url = files.url .. "/cut-resume", path = path, keep_partial = true })
    assert.is_nil(out)
    assert.are.equal(math.floor(SIZE / 2), err.partial_bytes)
    local kept = names(dir)
    assert.are.equal(1, #kept)
    assert.truthy(kept[1]:find("^%.tciot%-%w%w%w%w%w%w$"), kept[1])
    assert.are.equal("600", mode_of(dir .. "/" .. kept[1]))
    local seen = 0
    out, err = core.download(session, { url = files.url .. "/cut-resume", path = path, resume = true,
      on_progress = function(received) seen = received end })
    assert.is_nil(err)
    assert.are.equal(206, out.http_status)
    assert.is_true(out.resumed)
    assert.are.equal(SIZE, out.bytes)
    assert.are.equal(SIZE, seen)
    assert.are.equal(files.body, util.read_file(path))
    assert.are.same({ "devices.csv" }, names(dir))
    local log = files:log()
    assert.are.same({ { "/cut-resume", "" }, { "/cut-resume", "bytes=" .. math.floor(SIZE / 2) .. "-" } }, log)
    os.remove(path)
  end)

  it("starts over when the server ignores Range (200)", function()
    local path = dir .. "/devices.csv"
    local _, err = core.download(session, { url = files.url .. "/cut-restart", path = path, keep_partial = true })
    assert.is_truthy(err.partial_bytes)
    local out = assert(core.download(session, { url = files.url .. "/cut-restart", path = path, resume = true }))
    assert.are.equal(200, out.http_status)
    assert.is_false(out.resumed)
    assert.are.equal(files.body, util.read_file(path))
    assert.are.same({ "devices.csv" }, names(dir))
    os.remove(path)
  end)

  it("a kept partial goes when the session closes, or another download starts", function()
    local path = dir .. "/devices.csv"
    local s = assert(core.new_session{})
    local _, err = core.download(s, { url = files.url .. "/cut-always", path = path, keep_partial = true })
    assert.is_truthy(err.partial_bytes)
    assert.are.equal(1, #names(dir))
    assert(core.download(s, { url = files.url .. "/whole", path = dir .. "/other.csv" }))
    assert.are.same({ "other.csv" }, names(dir))
    _, err = core.download(s, { url = files.url .. "/cut-always", path = path, keep_partial = true })
    assert.is_truthy(err.partial_bytes)
    s:close()
    assert.are.same({ "other.csv" }, names(dir))
    os.remove(dir .. "/other.csv")
  end)

  it("raises on misuse", function()
    for _, req in ipairs{
      { url = "ftp://x/", path = dir .. "/x" }, { url = files.url, path = "a\0b" }, { url = files.url },
      { url = files.url, path = dir .. "/x", mode = 1024 }, { url = files.url, path = dir .. "/x", max_bytes = 0 },
      { url = files.url, path = dir .. "/x", colour = "red" }, { url = files.url .. "/\r\nX: 1", path = dir .. "/x" },
    } do
      assert.has_error(function() core.download(session, req) end)
    end
    assert.are.same({}, files:log())
  end)
end)

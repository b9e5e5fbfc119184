-- The README's nginx.conf is a complete file that `nginx -t` accepts as pasted: taken from the README, with
-- only the lines it marks `# path` pointed at this checkout and a temporary directory, and checked by
-- Debian's nginx. Its internal location sends exactly the signer's headers, as the specs' nginx does.
local util = require("helpers.util")
local nginx = require("helpers.nginx")
local ngx_http = require("tencentcloud.iotexplorer.ngx_http")

local ROOT = util.ROOT

local function readme_conf()
  local readme = assert(util.read_file(ROOT .. "/README.md"))
  local section = assert(readme:match("\n### nginx.conf\n(.-)\n### "), "no nginx.conf section in the README")
  return assert(section:match("```nginx\n(.-)```"), "no nginx block in the README's nginx.conf section")
end

-- The README's file with its `# path` lines (and only those) pointed at dir and this checkout.
local function localised(conf, dir)
  local out, changed = {}, 0
  for line in (conf .. "\n"):gmatch("([^\n]*)\n") do
    local new = line
    if line:find("# path%s*$") then
      new = line:gsub("/run/nginx%.pid", dir .. "/nginx.pid")
        :gsub("/var/log/nginx/", dir .. "/")
        :gsub("/usr/local/share/lua/5%.1/", ROOT .. "/lua/")
        :gsub("/usr/local/lib/lua/5%.1/", ROOT .. "/build/luajit/")
      if new ~= line then changed = changed + 1 end
    end
    out[#out + 1] = new
  end
  return table.concat(out, "\n"), changed
end

describe("the README's nginx.conf", function()
  it("is a whole file: events, modules, the user the workers run as", function()
    local conf = readme_conf()
    assert.truthy(conf:find("\nevents%s*{"), "no events block")
    assert.truthy(conf:find("^user www%-data;"), "no user line")
    for line in conf:gmatch("[^\n]+") do
      assert.is_nil(line:find("^%s*#%s*load_module"), "a commented-out load_module line: " .. line)
    end
    assert.truthy(conf:find("load_module [^\n]*ngx_http_lua_module%.so;"))
  end)

  it("sends exactly the signer's headers from the variables it declares, as the specs' nginx does", function()
    local conf = readme_conf()
    local declared, sent = {}, {}
    for v in conf:gmatch("set %$(tciot_[%w_]+) \"\";") do declared[#declared + 1] = v end
    for v in conf:gmatch("proxy_set_header [%w%-]+ %$(tciot_[%w_]+);") do sent[#sent + 1] = v end
    table.sort(declared)
    table.sort(sent)
    assert.same(ngx_http.variables(), declared)
    assert.same(ngx_http.variables(), sent)
    -- Every line of the specs' internal-location body is in the README's.
    local snippet = assert(util.read_file(ROOT .. "/spec/helpers/iotexplorer_proxy.conf"))
    for line in snippet:gmatch("[^\n]+") do
      if not line:find("^#") then
        assert.truthy(conf:find("\n%s*" .. line:gsub("%p", "%%%0") .. "\n"), "not in the README: " .. line)
      end
    end
  end)

  it("passes nginx -t as pasted (only the `# path` lines changed)", function()
    local found, why = nginx.find()
    if not found then
      pending(why)
      return
    end
    local _, uid = util.run("id -u")
    if uid:match("%d+") ~= "0" or not util.run("unshare -m true") then
      pending("needs root and unshare -m (to resolve the API's host without a network)")
      return
    end
    local dir = util.tmpdir("iotexplorer-readme-nginx")
    local conf, changed = localised(readme_conf(), dir)
    -- pid, error_log, access_log and the two Lua paths; the modules and the CA store are where the README
    -- says on this machine too.
    assert.equal(5, changed)
    util.write_file(dir .. "/nginx.conf", conf)
    -- nginx resolves the upstream's host name when it reads the file; this machine has no DNS, so a
    -- private mount namespace lends it a hosts file naming the API's host.
    util.write_file(dir .. "/hosts", "127.0.0.1 localhost\n127.0.0.1 iotexplorer.tencentcloudapi.com\n")
    local q = util.shell_quote
    local ok, out = util.run(string.format("unshare -m sh -c %s",
      q(string.format("mount --bind %s /etc/hosts && %s -t -p %s -c %s", q(dir .. "/hosts"), found.nginx,
        q(dir .. "/"), q(dir .. "/nginx.conf")))))
    util.rm_rf(dir)
    assert.truthy(ok, out)
    assert.truthy(out:find("test is successful", 1, true), out)
  end)
end)

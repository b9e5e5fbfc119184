-- core.sign against the vectors published in Tencent Cloud's TC3 documentation, and against an
-- independent derivation with luaossl for the cache and date rules.
local core = require("tencentcloud.iotexplorer.core")
local reference = require("helpers.emulator")   -- its signer shares no code with src/

local BODY = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'

local function published(overrides)
  local t = {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", secret_key = "Gu5t9xGARNpq86cd98joQYCN3*******",
    service = "cvm", host = "cvm.tencentcloudapi.com", region = "ap-guangzhou", action = "DescribeInstances",
    version = "2017-03-12", timestamp = 1551113065, content_type = "application/json; charset=utf-8",
    payload = BODY,
  }
  for k, v in pairs(overrides or {}) do t[k] = v end
  return t
end

local sha256_hex = reference.sha256_hex
local reference_signature = reference.tc3_signature

describe("core.sign", function()
  it("reproduces the published canonical request, string to sign and signature (content-type;host)", function()
    local headers, info = core.sign(published())
    assert.are.equal(table.concat({
      "POST", "/", "", "content-type:application/json; charset=utf-8", "host:cvm.tencentcloudapi.com", "",
      "content-type;host", "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064" }, "\n"),
      info.canonical_request)
    assert.are.equal("5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
      sha256_hex(info.canonical_request))
    assert.are.equal("TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
      .. "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", info.string_to_sign)
    assert.are.equal("2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c", info.signature)
    assert.are.equal("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
      .. "SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
      headers.Authorization)
  end)

  it("reproduces the published signature for the EXAMPLE key", function()
    local _, info = core.sign(published{ secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE" })
    assert.are.equal("72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168", info.signature)
  end)

  it("reproduces the published vector that also signs x-tc-action (lowercased)", function()
    local _, info = core.sign(published{ signed_headers = "content-type;host;x-tc-action" })
    assert.are.equal(table.concat({
      "POST", "/", "", "content-type:application/json; charset=utf-8", "host:cvm.tencentcloudapi.com",
      "x-tc-action:describeinstances", "", "content-type;host;x-tc-action",
      "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064" }, "\n"), info.canonical_request)
    assert.are.equal("7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84",
      sha256_hex(info.canonical_request))
    assert.are.equal("be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3", info.signature)
  end)

  it("returns every header to send, the timestamp as a string, token and language only when given", function()
    local headers = core.sign(published())
    assert.are.equal("application/json; charset=utf-8", headers["Content-Type"])
    assert.are.equal("cvm.tencentcloudapi.com", headers.Host)
    assert.are.equal("DescribeInstances", headers["X-TC-Action"])
    assert.are.equal("2017-03-12", headers["X-TC-Version"])
    assert.are.equal("1551113065", headers["X-TC-Timestamp"])
    assert.are.equal("ap-guangzhou", headers["X-TC-Region"])
    assert.is_nil(headers["X-TC-Token"])
    assert.is_nil(headers["X-TC-Language"])
    headers = core.sign(published{ token = "tok", language = "en-US" })
    assert.are.equal("tok", headers["X-TC-Token"])
    assert.are.equal("en-US", headers["X-TC-Language"])
  end)

  it("signs the Host with its port, as sent", function()
    local headers, info = core.sign(published{ host = "127.0.0.1:8443" })
    assert.are.equal("127.0.0.1:8443", headers.Host)
    assert.truthy(info.canonical_request:find("\nhost:127.0.0.1:8443\n", 1, true))
  end)

  it("signs GET with the query string and an empty payload", function()
    local _, info = core.sign(published{ method = "GET", query = "Limit=10&Offset=0", payload = nil,
                                         content_type = "application/x-www-form-urlencoded" })
    assert.are.equal("GET\n/\nLimit=10&Offset=0\n", info.canonical_request:sub(1, 24))
    assert.are.equal(sha256_hex(""), info.canonical_request:sub(-64))
  end)

  describe("the credential date", function()
    local cases = {
      { 1551139199, "2019-02-25" }, { 1551139200, "2019-02-26" },   -- end and start of a UTC day
      { 1582934399, "2020-02-28" }, { 1582934400, "2020-02-29" },   -- into a leap day
      { 1704067199, "2023-12-31" }, { 1704067200, "2024-01-01" },   -- across a year
      { 0, "1970-01-01" },
    }
    for _, case in ipairs(cases) do
      it("is the UTC date of the signed timestamp " .. case[1] .. " (" .. case[2] .. ")", function()
        local headers, info = core.sign(published{ timestamp = case[1] })
        assert.are.equal(tostring(case[1]), headers["X-TC-Timestamp"])
        assert.truthy(headers.Authorization:find("/" .. case[2] .. "/cvm/tc3_request", 1, true))
        assert.are.equal(reference_signature(published().secret_key, case[2], "cvm", info.string_to_sign),
          info.signature)
      end)
    end
  end)

  it("gives with a warm key cache the signature of a fresh derivation, across keys, dates and services", function()
    -- More combinations than the cache holds, visited twice, so hits, misses and evictions all happen.
    local keys = { "k1", "another-key", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "x", ("long"):rep(40) }
    local stamps = { 1551113065, 1551139200, 1700000000 }
    local services = { "cvm", "iotexplorer" }
    for _ = 1, 2 do
      for _, key in ipairs(keys) do
        for _, stamp in ipairs(stamps) do
          for _, service in ipairs(services) do
            local headers, info = core.sign(published{ secret_key = key, timestamp = stamp, service = service })
            local date = headers.Authorization:match("/(%d%d%d%d%-%d%d%-%d%d)/")
            assert.are.equal(os.date("!%Y-%m-%d", stamp), date)
            assert.are.equal(reference_signature(key, date, service, info.string_to_sign), info.signature)
          end
        end
      end
    end
  end)

  describe("raises on misuse, naming the field and never the value", function()
    local bad = {
      { "secret_id", nil }, { "secret_id", "" }, { "secret_id", 42 }, { "secret_key", "" },
      { "region", "ap\r\nX-Evil: 1" }, { "host", "h\nx" }, { "token", "t\r" }, { "language", {} },
      { "timestamp", -1 }, { "timestamp", 1.5 }, { "timestamp", "1551113065" },
      { "signed_headers", "host" }, { "payload", 7 }, { "action", "" }, { "method", "PUT" },
    }
    for _, case in ipairs(bad) do
      it(case[1] .. " = " .. (type(case[2]) == "string" and ("%q"):format(case[2]) or tostring(case[2])), function()
        local t = published()
        t[case[1]] = case[2]
        local ok, msg = pcall(core.sign, t)
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("'" .. case[1] .. "'", 1, true), msg)
        assert.is_true(t.secret_key == "" or not tostring(msg):find(t.secret_key, 1, true))
        assert.is_nil(tostring(msg):find("X-Evil", 1, true))
      end)
    end

    it("raises when the argument is not a table", function()
      assert.has_error(function() core.sign("nope") end)
    end)
  end)

  it("an unsigned request's headers say Authorization: SKIP", function()
    local t = published{ unsigned = true }
    t.secret_id, t.secret_key = nil, nil
    local headers, info = core.sign(t)
    assert.are.equal("SKIP", headers.Authorization)
    assert.is_nil(info)
  end)
end)

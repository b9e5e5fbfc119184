-- The emulator as STS: AssumeRole (signed, scope .../sts/...) and AssumeRoleWithWebIdentity (unsigned)
-- issue temporary keys that the iotexplorer actions accept with their token, until they expire by the
-- emulator clock or are revoked.
local emulator = require("helpers.emulator")
local with = emulator.with
local defaults = emulator.defaults

local DOC_BATCH = { ProductId = "R32ONVL0EU", BatchProductionId = "LC-ya6zinv9" }
local ROLE = { RoleArn = defaults.ROLE_ARN, RoleSessionName = "spec-session" }
local WEB = { ProviderId = defaults.PROVIDER_ID, WebIdentityToken = defaults.WEB_IDENTITY_TOKEN,
  RoleArn = defaults.ROLE_ARN, RoleSessionName = "spec-oidc", DurationSeconds = 3600 }

local function err_code(r)
  return r and r.Error and r.Error.Code
end

describe("emulator as STS", function()
  local h = emulator.hooks({ clock_skew = 0 })
  local emu

  lazy_setup(function() emu = h.setup() end)
  lazy_teardown(h.teardown)
  before_each(h.before_each)

  -- Describes the documented batch with issued credentials; returns the error code or nil.
  local function use(creds, opts)
    opts = opts or {}
    local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH, { secret_id = creds.TmpSecretId,
      secret_key = creds.TmpSecretKey, token = opts.token == nil and creds.Token or opts.token or nil })
    return doc and doc.Response and doc.Response.Error and doc.Response.Error.Code
  end

  it("issues keys with AssumeRole that iotexplorer accepts with their token", function()
    local before = os.time()
    local r = emu:assume_role(ROLE)
    assert.is_nil(err_code(r))
    local c = r.Credentials
    assert.matches("^AKID", c.TmpSecretId)
    assert.is_string(c.TmpSecretKey)
    assert.is_string(c.Token)
    assert.is_true(r.ExpiredTime >= before + 7200 and r.ExpiredTime <= os.time() + 7200)
    assert.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", r.ExpiredTime), r.Expiration)
    assert.matches("^%x+%-", r.RequestId)
    assert.is_nil(use(c))
    assert.equal("AuthFailure.TokenFailure", use(c, { token = false }))
    assert.equal("AuthFailure.TokenFailure", use(c, { token = "not-the-token" }))
  end)

  it("wants AssumeRole signed with the sts scope and a known credential", function()
    local _, _, doc = emu:call("AssumeRole", ROLE, { version = "2018-08-13" })   -- iotexplorer scope
    assert.equal("AuthFailure.SignatureFailure", err_code(doc.Response))
    assert.equal("AuthFailure.SignatureFailure", err_code(emu:assume_role(ROLE, { unsigned = true })))
    assert.equal("AuthFailure.SecretIdNotFound", err_code(emu:assume_role(ROLE, { secret_id = "AKIDNOBODY" })))
    assert.equal("NoSuchVersion", err_code(emu:assume_role(ROLE, { version = "2019-04-23" })))
  end)

  it("issues keys with AssumeRoleWithWebIdentity, unsigned, for a provider's token", function()
    local r = emu:assume_role_with_web_identity(WEB)
    assert.is_nil(err_code(r))
    assert.is_true(math.abs(r.ExpiredTime - (os.time() + 3600)) <= 2)
    assert.is_nil(use(r.Credentials))
    assert.equal("InvalidParameter.WebIdentityTokenError",
      err_code(emu:assume_role_with_web_identity(with(WEB, { WebIdentityToken = "forged" }))))
    assert.equal("InvalidParameter.ParamError",
      err_code(emu:assume_role_with_web_identity(with(WEB, { ProviderId = "nobody" }))))
  end)

  it("checks both actions' parameters", function()
    assert.equal("ResourceNotFound.RoleNotFound",
      err_code(emu:assume_role(with(ROLE, { RoleArn = "qcs::cam::uin/1:roleName/none" }))))
    assert.equal("MissingParameter", err_code(emu:assume_role(with(ROLE, { RoleSessionName = false }))))
    assert.equal("InvalidParameter.ParamError", err_code(emu:assume_role(with(ROLE, { RoleSessionName = "a b" }))))
    assert.equal("InvalidParameterValue", err_code(emu:assume_role(with(ROLE, { DurationSeconds = 43201 }))))
    assert.equal("InvalidParameter", err_code(emu:assume_role(with(ROLE, { DurationSeconds = "60" }))))
    assert.equal("UnknownParameter", err_code(emu:assume_role(with(ROLE, { Nope = 1 }))))
    assert.equal("MissingParameter", err_code(emu:assume_role_with_web_identity(with(WEB, { ProviderId = false }))))
  end)

  it("lets issued keys expire by its clock", function()
    local r = emu:assume_role(with(ROLE, { DurationSeconds = 60 }))
    assert.is_nil(use(r.Credentials))
    emu:set({ clock_skew = 61 })
    -- The request is signed at the skewed time, so only the expiry can refuse it.
    local _, _, doc = emu:call("DescribeBatchProduction", DOC_BATCH, { secret_id = r.Credentials.TmpSecretId,
      secret_key = r.Credentials.TmpSecretKey, token = r.Credentials.Token, timestamp = os.time() + 61 })
    assert.equal("AuthFailure.TokenFailure", doc.Response.Error.Code)
    emu:set({ clock_skew = 0 })
    assert.is_nil(use(r.Credentials))
    emu:expire({ TmpSecretId = r.Credentials.TmpSecretId })
    assert.equal("AuthFailure.TokenFailure", use(r.Credentials))
  end)

  it("revokes issued keys early", function()
    local a = emu:assume_role(ROLE).Credentials
    local b = emu:assume_role_with_web_identity(WEB).Credentials
    emu:revoke({ TmpSecretId = a.TmpSecretId })
    assert.equal("AuthFailure.SecretIdNotFound", use(a))
    assert.is_nil(use(b))
    emu:revoke({ all = true })
    assert.equal("AuthFailure.SecretIdNotFound", use(b))
    assert.has_error(function() emu:revoke({ TmpSecretId = "AKIDNEVERISSUED" }) end)
  end)

  it("counts STS requests per action and lists what it issued without the keys", function()
    emu:assume_role(ROLE)
    emu:assume_role(ROLE)
    emu:assume_role_with_web_identity(with(WEB, { WebIdentityToken = "forged" }))
    local view = emu:sts()
    assert.equal(2, view.by_action.AssumeRole)
    assert.equal(1, view.by_action.AssumeRoleWithWebIdentity)
    assert.same(view.by_action, emu:counters().sts.by_action)
    assert.is_true(#view.issued >= 2)
    for _, item in ipairs(view.issued) do
      assert.is_nil(item.TmpSecretKey)
      assert.is_nil(item.Token)
      assert.is_string(item.TmpSecretId)
    end
    -- STS requests are not iotexplorer requests.
    assert.is_nil(emu:counters().max_per_second_by_action.AssumeRole)
  end)

  it("takes roles and providers from its fixture", function()
    local own = emulator.start({ fixture = { sts = {
      roles = { { RoleArn = "qcs::cam::uin/42:roleName/short", max_duration = 900 } },
      providers = { { ProviderId = "tke", tokens = { "jwt-1" }, roles = { "qcs::cam::uin/42:roleName/short" } } },
    } } })
    local ok, err = pcall(function()
      local role = { RoleArn = "qcs::cam::uin/42:roleName/short", RoleSessionName = "s1" }
      assert.is_nil(err_code(own:assume_role(role)))
      assert.equal("InvalidParameter.OverTimeError", err_code(own:assume_role(with(role, { DurationSeconds = 901 }))))
      local web = { ProviderId = "tke", WebIdentityToken = "jwt-1", RoleArn = role.RoleArn, RoleSessionName = "s2" }
      assert.is_nil(err_code(own:assume_role_with_web_identity(web)))
      -- The provider may assume only its roles.
      assert.equal("UnauthorizedOperation",
        err_code(own:assume_role_with_web_identity(with(web, { RoleArn = defaults.ROLE_ARN }))))
    end)
    own:stop()
    assert(ok, err)
  end)
end)

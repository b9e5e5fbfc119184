-- Default fixture of the local IoT Explorer emulator. Pure data, so that the spec
-- helper (which may run under LuaJIT) can read the test credentials without
-- starting anything.
local M = {}

-- Permanent test credential (no token).
M.SECRET_ID = "AKIDLOCALEMULATOR0000000000000000000"
M.SECRET_KEY = "LocalEmulatorSecretKey0000000000"

-- Temporary credential: every request must carry X-TC-Token = TMP_TOKEN.
M.TMP_SECRET_ID = "AKIDLOCALEMULATORTMP0000000000000000"
M.TMP_SECRET_KEY = "LocalEmulatorTmpSecretKey0000000"
M.TMP_TOKEN = "LocalEmulatorSessionToken00000000000000000000"

-- STS: the role both AssumeRole calls may assume, and the OIDC provider with the one web identity token
-- it accepts (AssumeRoleWithWebIdentity is unsigned: the token is the proof).
M.ROLE_ARN = "qcs::cam::uin/100000000001:roleName/emulator-role"
M.PROVIDER_ID = "emulator-oidc"
M.WEB_IDENTITY_TOKEN = "emulator-web-identity-token"

-- Returns a fresh copy of the default fixture (callers may mutate it).
function M.fixture()
  return {
    credentials = {
      { secret_id = M.SECRET_ID, secret_key = M.SECRET_KEY },
      { secret_id = M.TMP_SECRET_ID, secret_key = M.TMP_SECRET_KEY, token = M.TMP_TOKEN },
    },
    products = {
      { ProductId = "R32ONVL0EU", ProjectId = "PROJECT0001", ProductName = "emulator-sample-product" },
      { ProductId = "EMULPROD02", ProjectId = "PROJECT0001", ProductName = "emulator-second-product" },
    },
    batches = {
      -- The documented DescribeBatchProduction example, frozen at Status 3.
      {
        BatchProductionId = "LC-ya6zinv9", ProductId = "R32ONVL0EU",
        BatchCnt = 3, BurnMethod = 0, CreateTime = 1572233486, GenerationMethod = 0,
        UploadUrl = "", Status = 3, SuccessCount = 3, LastFailedReason = "",
      },
    },
    sts = {
      roles = { { RoleArn = M.ROLE_ARN } },
      providers = { { ProviderId = M.PROVIDER_ID, tokens = { M.WEB_IDENTITY_TOKEN } } },
    },
  }
end

return M

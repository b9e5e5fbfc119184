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

M.VERSION = "2019-04-23"
M.SERVICE = "iotexplorer"

M.REGIONS = {
  ["ap-bangkok"] = true,
  ["ap-guangzhou"] = true,
  ["ap-shanghai"] = true,
  ["ap-shanghai-fsi"] = true,
  ["eu-frankfurt"] = true,
  ["na-ashburn"] = true,
}

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
    status_step_seconds = 1,
    download_ttl = 900,
    rate_limit = 20,
    clock_skew = 0,
    idle_timeout = 60,
  }
end

return M

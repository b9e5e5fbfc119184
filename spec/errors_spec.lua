-- The error object: shape, tostring, is_error, retry classification, redaction.
local errors = require("tencentcloud.iotexplorer.errors")

describe("errors", function()
  it("reads CODE: message (RequestId: id), or CODE: message without one", function()
    local e = errors.new("ResourceNotFound.BatchProductionNotExist", "no such batch", { request_id = "rid-1" })
    assert.equal("ResourceNotFound.BatchProductionNotExist: no such batch (RequestId: rid-1)", tostring(e))
    assert.equal("ClientError.Timeout: too slow", tostring(errors.new("ClientError.Timeout", "too slow")))
  end)

  it("wraps a core error table, keeping every field", function()
    local core_err = {
      code = "ClientError.HttpStatusCodeError", message = "HTTP 502", http_status = 502,
      request_id = "r", field = nil, curl_code = 0, sent = true, server_date = 1700000000,
    }
    local e = errors.from_core(core_err)
    assert.is_true(errors.is_error(e))
    assert.equal("ClientError.HttpStatusCodeError", e.code)
    assert.equal(502, e.http_status)
    assert.equal(1700000000, e.server_date)
    assert.is_true(e.sent)
    assert.is_false(e.retryable)
    assert.equal(0, e.attempts)
    assert.equal(e, errors.from_core(e)) -- wrapping twice changes nothing
  end)

  it("tells error objects apart from anything else", function()
    assert.is_true(errors.is_error(errors.invalid("ProductId", "bad")))
    assert.is_false(errors.is_error({ code = "X", message = "y" }))
    assert.is_false(errors.is_error("ClientError.Timeout"))
    assert.is_false(errors.is_error(nil))
    assert.is_false(errors.is_error(setmetatable({}, {})))
  end)

  it("marks input errors with the field and as never sent", function()
    local e = errors.invalid("ProductId", "ProductId is required")
    assert.equal("ClientError.InvalidParameter", e.code)
    assert.equal("ProductId", e.field)
    assert.is_false(e.sent)
  end)

  describe("retry classification", function()
    local function r(action, fields)
      return errors.is_retryable(errors.from_core(fields), action)
    end

    it("retries transient failures of reads", function()
      for _, action in ipairs({ "DescribeBatchProduction", "GetBatchProductionsList", "ListThings" }) do
        assert.is_true(r(action, { code = "ClientError.NetworkError", sent = true }))
        assert.is_true(r(action, { code = "ClientError.Timeout", sent = true }))
        assert.is_true(r(action, { code = "ClientError.HttpStatusCodeError", http_status = 503 }))
        assert.is_true(r(action, { code = "ClientError.HttpStatusCodeError", http_status = 500 }))
        assert.is_true(r(action, { code = "InternalError" }))
        assert.is_true(r(action, { code = "InternalError.DBOpertaionError" }))
        assert.is_true(r(action, { code = "InternalError.InternalServerException" }))
        assert.is_true(r(action, { code = "ServiceUnavailable" }))
        assert.is_true(r(action, { code = "RequestLimitExceeded" }))
        assert.is_true(r(action, { code = "RequestLimitExceeded.UinLimitExceeded" }))
        assert.is_true(r(action, { code = "SomethingNew", http_status = 502 }))
      end
    end)

    it("does not retry what another attempt cannot fix", function()
      local action = "DescribeBatchProduction"
      for _, code in ipairs({
        "ResourceNotFound.BatchProductionNotExist", "InvalidParameter", "AuthFailure.SignatureFailure",
        "AuthFailure.SignatureExpire", "UnauthorizedOperation.NoPermissionToStudioProduct",
        "ClientError.ParseJsonError", "ClientError.ResponseTooLarge", "ClientError.InvalidParameter",
        "ClientError.CredentialError", "ClientError.ClientClosed", "InternalErrorish", "LimitExceeded",
      }) do
        assert.is_false(r(action, { code = code, http_status = 200 }), code)
      end
      assert.is_false(r(action, { code = "ClientError.HttpStatusCodeError", http_status = 404 }))
      assert.is_false(r(action, { code = "ClientError.HttpStatusCodeError", http_status = 302 }))
    end)

    it("retries writes only when the server certainly did not process them", function()
      local action = "CreateBatchProduction"
      assert.is_true(r(action, { code = "RequestLimitExceeded" }))
      assert.is_true(r(action, { code = "RequestLimitExceeded.IPLimitExceeded" }))
      assert.is_true(r(action, { code = "ClientError.NetworkError", sent = false }))
      assert.is_true(r(action, { code = "ClientError.Timeout", sent = false }))
      assert.is_false(r(action, { code = "ClientError.NetworkError", sent = true }))
      assert.is_false(r(action, { code = "ClientError.Timeout", sent = true }))
      assert.is_false(r(action, { code = "InternalError" }))
      assert.is_false(r(action, { code = "ServiceUnavailable" }))
      assert.is_false(r(action, { code = "ClientError.HttpStatusCodeError", http_status = 503 }))
    end)

    it("knows which actions are reads", function()
      assert.is_true(errors.is_idempotent("DescribeBatchProduction"))
      assert.is_true(errors.is_idempotent("GetBatchProductionsList"))
      assert.is_true(errors.is_idempotent("ListFirmwares"))
      assert.is_false(errors.is_idempotent("CreateBatchProduction"))
      assert.is_false(errors.is_idempotent("DeleteDevice"))
      assert.is_false(errors.is_idempotent("ModifyProduct"))
      assert.is_false(errors.is_idempotent(nil))
    end)
  end)

  it("redacts secrets from every string field and from the cause", function()
    local cause = errors.new("X", "echo SECRETKEY and TOKEN")
    local e = errors.new("Y", "the key SECRETKEY twice SECRETKEY", { cause = cause, extra = "TOKEN%" })
    errors.redact(e, { "SECRETKEY", "TOKEN%" })
    assert.equal("the key *** twice ***", e.message)
    assert.equal("***", e.extra)
    assert.equal("echo *** and TOKEN", cause.message)
    assert.equal("a***b", errors.scrub("a.-b", { ".-" })) -- plain text, not a pattern
  end)
end)

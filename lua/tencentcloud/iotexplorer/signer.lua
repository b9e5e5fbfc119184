-- tencentcloud.iotexplorer.signer: the core's bound signer (core.signer), entered the cheapest way.
--
--   local signer = require("tencentcloud.iotexplorer.signer")
--   local s = assert(signer.new{ secret_id = ..., secret_key = ..., token = nil, region = "ap-guangzhou",
--                                host = actions.HOST, language = nil })
--   local authorization = s:sign(action, version, timestamp, payload)       -- timestamp nil: now
--   local authorization, headers = s:sign(action, version, timestamp, payload, reused_table)
--   local headers, parts = s:explain(action, version, timestamp, payload)  -- as core.sign returns
--   s:close()                                                              -- wipes the key; idempotent
--
-- On Lua 5.4 this is core.signer's userdata itself. On LuaJIT a call into a C function through the Lua C
-- API cannot be compiled and costs a third of a signature; an FFI call to the same C signer
-- (tciot_signer_sign in core.so) can, so sign() goes through the FFI there. Both run the one signer (tc3.c).
local core = require("tencentcloud.iotexplorer.core")

local M = {}

local CORE_NAME = "tencentcloud.iotexplorer.core"

-- The FFI entry, or nil where there is none (Lua 5.4, or the library cannot be found by path).
local function load_ffi()
  if not rawget(_G, "jit") then return nil end
  local ok, ffi = pcall(require, "ffi")
  if not ok then return nil end
  local path = package.searchpath and package.searchpath(CORE_NAME, package.cpath)
  if not path then return nil end
  pcall(ffi.cdef, [[
    const char *tciot_signer_sign(void *signer, const char *action, size_t action_len, const char *version,
                                  size_t version_len, double timestamp, const char *payload,
                                  size_t payload_len, size_t *auth_len);
  ]])
  local loaded, lib = pcall(ffi.load, path)
  if not loaded then return nil end
  local found = pcall(function() return lib.tciot_signer_sign end)
  if not found then return nil end
  return ffi, lib
end

local ffi, lib = load_ffi()
M.ffi = ffi ~= nil

local FfiSigner = {}
FfiSigner.__index = FfiSigner

if ffi then
  local auth_len = ffi.new("size_t[1]")
  local entry = lib.tciot_signer_sign

  local function check_string(v, n, what)
    if type(v) ~= "string" then
      error(string.format("bad argument #%d to 'sign' (%s must be a string, got %s)", n, what, type(v)), 3)
    end
  end

  function FfiSigner:sign(action, version, timestamp, payload, into)
    if into ~= nil then
      return self.core:sign(action, version, timestamp, payload, into)
    end
    check_string(action, 1, "action")
    check_string(version, 2, "version")
    check_string(payload, 4, "payload")
    if timestamp == nil then
      timestamp = os.time()
    elseif type(timestamp) ~= "number" then
      error("bad argument #3 to 'sign' (timestamp must be a number, got " .. type(timestamp) .. ")", 2)
    end
    local p = entry(self.ptr, action, #action, version, #version, timestamp, payload, #payload, auth_len)
    if p == nil then
      -- The C side says no: the same checks as core.signer's sign, which names the argument.
      return self.core:sign(action, version, timestamp, payload)
    end
    return ffi.string(p, auth_len[0])
  end

  function FfiSigner:explain(...)
    return self.core:explain(...)
  end

  function FfiSigner:close()
    self.core:close()
  end

  FfiSigner.__tostring = function(self) return tostring(self.core) end
end

-- signer.new(opts) -> signer | nil, err (the core's error table, when memory or OpenSSL fails). opts are
-- core.signer's (core.sign's target and credential fields); a bad or unknown one raises.
function M.new(opts)
  local s, err = core.signer(opts)
  if not s or not ffi then
    return s, err
  end
  return setmetatable({ core = s, ptr = ffi.cast("void *", s) }, FfiSigner)
end

return M

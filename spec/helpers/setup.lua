-- Points package.cpath at the core built for the running interpreter (see Makefile: build/<lua>/),
-- or at $TCIOT_CPATH when set (make test-asan: the sanitizer build).
local flavour = (type(jit) == "table") and "luajit" or _VERSION:gsub("Lua ", "lua")
package.cpath = (os.getenv("TCIOT_CPATH") or ("build/" .. flavour .. "/?.so")) .. ";" .. package.cpath

-- make test-asan preloads the ASan runtime into this interpreter alone: the processes specs start (the
-- emulator, nginx, openssl, the tool under test) must not inherit it, or LeakSanitizer judges them too.
if os.getenv("LD_PRELOAD") then
  local popen, execute = io.popen, os.execute
  -- luacheck: push ignore 122
  io.popen = function(cmd, ...) return popen("unset LD_PRELOAD; " .. cmd, ...) end
  os.execute = function(cmd)
    if cmd == nil then return execute() end
    return execute("unset LD_PRELOAD; " .. cmd)
  end
  -- luacheck: pop
end

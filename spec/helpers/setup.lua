-- Points package.cpath at the core built for the running interpreter (see Makefile: build/<lua>/),
-- or at $TCIOT_CPATH when set (make test-asan: the sanitizer build).
local flavour = (type(jit) == "table") and "luajit" or _VERSION:gsub("Lua ", "lua")
package.cpath = (os.getenv("TCIOT_CPATH") or ("build/" .. flavour .. "/?.so")) .. ";" .. package.cpath

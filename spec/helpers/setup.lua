-- Points package.cpath at the core built for the running interpreter (see Makefile: build/<lua>/).
local flavour = (type(jit) == "table") and "luajit" or _VERSION:gsub("Lua ", "lua")
package.cpath = "build/" .. flavour .. "/?.so;" .. package.cpath

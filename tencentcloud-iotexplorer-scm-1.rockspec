rockspec_format = "3.0"
package = "tencentcloud-iotexplorer"
version = "scm-1"
-- This rockspec builds a checkout: `luarocks make` takes the files in place and never fetches `url`.
-- `luarocks install` needs a rockspec whose source is an archive: `make dist` writes one (and a .src.rock).
source = {
   url = "git+file://.",
}
description = {
   summary = "Tencent Cloud IoT Explorer API client for Lua and OpenResty, with a native TC3 signer and libcurl",
   detailed = [[
Calls the Tencent Cloud IoT Explorer API 3.0 (service iotexplorer, version 2019-04-23): DescribeBatchProduction
and the other batch-production actions, or any action of the service. Signing (TC3-HMAC-SHA256, OpenSSL) and
HTTP (libcurl, keep-alive) run in C; credentials, retries, rate limiting and error objects are Lua.
Ships a local API emulator for offline development and the tciot command-line tool.
]],
   license = "MIT",
   labels = { "tencentcloud", "iot", "api", "openresty" },
}
-- The client needs lua-cjson only; LuaSocket and luaossl serve the bundled emulator (`tciot emulator`, the
-- specs), which says so when they are missing.
dependencies = {
   "lua >= 5.1",
   "lua-cjson",
   "luasocket",
   "luaossl",
}
external_dependencies = {
   -- Checked by library name: Debian keeps curl/curl.h under a multiarch folder a header check misses.
   CURL = { library = "curl" },
   OPENSSL = { library = "crypto" },
   HIREDIS = { header = "hiredis/hiredis.h" },
}
build = {
   type = "builtin",
   modules = {
      ["tencentcloud.iotexplorer.core"] = {
         sources = { "src/core.c", "src/lcore.c", "src/session.c", "src/call.c", "src/download.c",
                     "src/outfile.c", "src/http_get.c", "src/signals.c", "src/jsonenc.c", "src/lsigner.c",
                     "src/tc3.c", "src/http.c", "src/multi.c" },
         libraries = { "curl", "crypto", "pthread", "m" },
         incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
      },
      ["tencentcloud.iotexplorer.redis_core"] = {
         sources = { "src/redis.c" },
         libraries = { "hiredis" },
         incdirs = { "$(HIREDIS_INCDIR)" },
         libdirs = { "$(HIREDIS_LIBDIR)" },
      },
      ["tencentcloud.iotexplorer"] = "lua/tencentcloud/iotexplorer/init.lua",
      ["tencentcloud.iotexplorer.actions"] = "lua/tencentcloud/iotexplorer/actions.lua",
      ["tencentcloud.iotexplorer.batch"] = "lua/tencentcloud/iotexplorer/batch.lua",
      ["tencentcloud.iotexplorer.check"] = "lua/tencentcloud/iotexplorer/check.lua",
      ["tencentcloud.iotexplorer.cli"] = "lua/tencentcloud/iotexplorer/cli.lua",
      ["tencentcloud.iotexplorer.cli.commands"] = "lua/tencentcloud/iotexplorer/cli/commands.lua",
      ["tencentcloud.iotexplorer.cli.configure"] = "lua/tencentcloud/iotexplorer/cli/configure.lua",
      ["tencentcloud.iotexplorer.cli.emulator"] = "lua/tencentcloud/iotexplorer/cli/emulator.lua",
      ["tencentcloud.iotexplorer.cli.format"] = "lua/tencentcloud/iotexplorer/cli/format.lua",
      ["tencentcloud.iotexplorer.cli.help"] = "lua/tencentcloud/iotexplorer/cli/help.lua",
      ["tencentcloud.iotexplorer.cli.many"] = "lua/tencentcloud/iotexplorer/cli/many.lua",
      ["tencentcloud.iotexplorer.cli.progress"] = "lua/tencentcloud/iotexplorer/cli/progress.lua",
      ["tencentcloud.iotexplorer.credentials"] = "lua/tencentcloud/iotexplorer/credentials/init.lua",
      ["tencentcloud.iotexplorer.credentials.assume_role"] = "lua/tencentcloud/iotexplorer/credentials/assume_role.lua",
      ["tencentcloud.iotexplorer.credentials.custom"] = "lua/tencentcloud/iotexplorer/credentials/custom.lua",
      ["tencentcloud.iotexplorer.credentials.cvm_role"] = "lua/tencentcloud/iotexplorer/credentials/cvm_role.lua",
      ["tencentcloud.iotexplorer.credentials.environment"] = "lua/tencentcloud/iotexplorer/credentials/environment.lua",
      ["tencentcloud.iotexplorer.credentials.oidc"] = "lua/tencentcloud/iotexplorer/credentials/oidc.lua",
      ["tencentcloud.iotexplorer.credentials.profile"] = "lua/tencentcloud/iotexplorer/credentials/profile.lua",
      ["tencentcloud.iotexplorer.credentials.record"] = "lua/tencentcloud/iotexplorer/credentials/record.lua",
      ["tencentcloud.iotexplorer.credentials.static"] = "lua/tencentcloud/iotexplorer/credentials/static.lua",
      ["tencentcloud.iotexplorer.credentials.sts"] = "lua/tencentcloud/iotexplorer/credentials/sts.lua",
      ["tencentcloud.iotexplorer.credentials.tccli"] = "lua/tencentcloud/iotexplorer/credentials/tccli.lua",
      ["tencentcloud.iotexplorer.defaults"] = "lua/tencentcloud/iotexplorer/defaults.lua",
      ["tencentcloud.iotexplorer.emulator"] = "lua/tencentcloud/iotexplorer/emulator/init.lua",
      ["tencentcloud.iotexplorer.emulator.actions"] = "lua/tencentcloud/iotexplorer/emulator/actions.lua",
      ["tencentcloud.iotexplorer.emulator.auth"] = "lua/tencentcloud/iotexplorer/emulator/auth.lua",
      ["tencentcloud.iotexplorer.emulator.control"] = "lua/tencentcloud/iotexplorer/emulator/control.lua",
      ["tencentcloud.iotexplorer.emulator.counters"] = "lua/tencentcloud/iotexplorer/emulator/counters.lua",
      ["tencentcloud.iotexplorer.emulator.defaults"] = "lua/tencentcloud/iotexplorer/emulator/defaults.lua",
      ["tencentcloud.iotexplorer.emulator.faults"] = "lua/tencentcloud/iotexplorer/emulator/faults.lua",
      ["tencentcloud.iotexplorer.emulator.server"] = "lua/tencentcloud/iotexplorer/emulator/server.lua",
      ["tencentcloud.iotexplorer.emulator.state"] = "lua/tencentcloud/iotexplorer/emulator/state.lua",
      ["tencentcloud.iotexplorer.emulator.store"] = "lua/tencentcloud/iotexplorer/emulator/store.lua",
      ["tencentcloud.iotexplorer.emulator.sts"] = "lua/tencentcloud/iotexplorer/emulator/sts.lua",
      ["tencentcloud.iotexplorer.emulator.tc3"] = "lua/tencentcloud/iotexplorer/emulator/tc3.lua",
      ["tencentcloud.iotexplorer.emulator.wire"] = "lua/tencentcloud/iotexplorer/emulator/wire.lua",
      ["tencentcloud.iotexplorer.errors"] = "lua/tencentcloud/iotexplorer/errors.lua",
      ["tencentcloud.iotexplorer.limiter"] = "lua/tencentcloud/iotexplorer/limiter.lua",
      ["tencentcloud.iotexplorer.many"] = "lua/tencentcloud/iotexplorer/many.lua",
      ["tencentcloud.iotexplorer.ngx"] = "lua/tencentcloud/iotexplorer/ngx.lua",
      ["tencentcloud.iotexplorer.ngx_http"] = "lua/tencentcloud/iotexplorer/ngx_http.lua",
      ["tencentcloud.iotexplorer.perform"] = "lua/tencentcloud/iotexplorer/perform.lua",
      ["tencentcloud.iotexplorer.redis_store"] = "lua/tencentcloud/iotexplorer/redis_store.lua",
      ["tencentcloud.iotexplorer.retry"] = "lua/tencentcloud/iotexplorer/retry.lua",
      ["tencentcloud.iotexplorer.signer"] = "lua/tencentcloud/iotexplorer/signer.lua",
   },
   install = {
      bin = { tciot = "bin/tciot" },
   },
}

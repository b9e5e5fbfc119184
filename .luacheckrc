std = "max"
max_line_length = 120
files["spec"] = { std = "+busted" }
exclude_files = { "build/" }
-- nginx's API, read inside nginx only (lua/tencentcloud/iotexplorer/ngx.lua and the nginx specs).
files["lua/tencentcloud/iotexplorer/ngx.lua"] = { read_globals = { "ngx" } }
files["lua/tencentcloud/iotexplorer/ngx_http.lua"] = { read_globals = { "ngx" } }
files["lua/tencentcloud/iotexplorer/many.lua"] = { read_globals = { "ngx" } }
files["spec/nginx_spec.lua"] = { std = "+busted", read_globals = { "ngx" } }

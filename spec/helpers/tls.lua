-- Spec helper: a local certificate authority and a TLS front for the emulator.
--
--   local tls = require("helpers.tls")
--   local front = tls.start{ upstream = emu.url }
--   front.ca_file            -- our CA (PEM); the system store does not know it
--   front.urls.good          -- https://127.0.0.1:P  a certificate for 127.0.0.1 and localhost, from our CA
--   front.urls.wrong_host    -- https://127.0.0.1:P  a certificate for wrong.example.invalid, from our CA
--   front.urls.expired       -- https://127.0.0.1:P  a certificate for 127.0.0.1 that expired, from our CA
--   front:stop()
--
-- Keys and certificates are made with the openssl command line into a fresh temporary directory at
-- test time (EC P-256 keys: generation takes milliseconds). The TLS is Debian's nginx, started as our
-- own instance (-p <temporary prefix>, loopback ports only, no system service), proxying to the plain
-- HTTP emulator with the Host header kept as the client signed it. nginx runs under a shell that waits
-- on a pipe from this process: when the pipe closes (stop, or this process dying) the shell stops
-- nginx, so it cannot outlive the test run. LD_PRELOAD (make test-asan) is not passed on.
local util = require("helpers.util")

local M = {}
local Front = {}
Front.__index = Front

local shell_quote, read_file, write_file, run = util.shell_quote, util.read_file, util.write_file,
  util.check_output

M.free_port = util.free_port

-- Makes our CA and three server certificates in dir. Returns a table of paths.
function M.make_certificates(dir)
  local q = function(name) return shell_quote(dir .. "/" .. name) end
  local newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  local cmds = {
    -- The CA: self-signed, marked as a CA.
    "openssl req -x509 " .. newkey .. " -keyout " .. q("ca.key") .. " -out " .. q("ca.crt")
      .. " -days 2 -subj '/CN=tencentcloud-iotexplorer test CA'"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
  }
  local certs = {
    good = { cn = "localhost", san = "DNS:localhost,IP:127.0.0.1", days = 2 },
    wrong_host = { cn = "wrong.example.invalid", san = "DNS:wrong.example.invalid", days = 2 },
    -- A negative -days puts notAfter before now (OpenSSL 3.0's x509 has no -not_after yet).
    expired = { cn = "localhost", san = "DNS:localhost,IP:127.0.0.1", days = -1 },
  }
  for name, c in pairs(certs) do
    write_file(dir .. "/" .. name .. ".ext", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
      .. "extendedKeyUsage=serverAuth\nsubjectAltName=" .. c.san .. "\n")
    cmds[#cmds + 1] = "openssl req " .. newkey .. " -keyout " .. q(name .. ".key") .. " -out " .. q(name .. ".csr")
      .. " -subj " .. shell_quote("/CN=" .. c.cn)
    cmds[#cmds + 1] = "openssl x509 -req -in " .. q(name .. ".csr") .. " -CA " .. q("ca.crt") .. " -CAkey "
      .. q("ca.key") .. " -CAcreateserial -CAserial " .. q("ca.srl") .. " -out " .. q(name .. ".crt")
      .. " -days " .. c.days .. " -extfile " .. q(name .. ".ext")
  end
  run(table.concat(cmds, " && "))
  local paths = { ca_file = dir .. "/ca.crt", ca_key = dir .. "/ca.key" }
  for name in pairs(certs) do
    paths[name] = { cert = dir .. "/" .. name .. ".crt", key = dir .. "/" .. name .. ".key" }
  end
  return paths
end

local SERVER = [[
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        location / {
            proxy_pass http://%s;
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
]]

local function nginx_conf(dir, upstream, servers)
  local parts = {
    "daemon off;", "worker_processes 1;", "pid " .. dir .. "/nginx.pid;", "error_log " .. dir .. "/error.log warn;",
    "events { worker_connections 64; }", "http {", "    access_log off;",
  }
  for _, t in ipairs{ "body", "proxy", "fastcgi", "uwsgi", "scgi" } do
    local key = t == "body" and "client_body" or t
    parts[#parts + 1] = string.format("    %s_temp_path %s/tmp/%s;", key, dir, t)
  end
  for _, s in ipairs(servers) do
    parts[#parts + 1] = string.format(SERVER, s.port, s.cert, s.key, upstream)
  end
  parts[#parts + 1] = "}"
  return table.concat(parts, "\n") .. "\n"
end

local function find_nginx()
  for _, p in ipairs{ "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/openresty/nginx/sbin/nginx" } do
    if util.exists(p) then return p end
  end
  return "nginx"
end

-- opts.upstream: the emulator's URL (http://127.0.0.1:PORT). Raises when anything fails to start.
function M.start(opts)
  local upstream = assert(opts and opts.upstream, "tls.start needs upstream"):match("^http://([^/]+)")
  local dir = util.tmpdir("iotexplorer-tls")
  local self = setmetatable({ dir = dir, urls = {}, ports = {} }, Front)
  local ok, err = pcall(function()
    local paths = M.make_certificates(dir)
    self.ca_file, self.paths = paths.ca_file, paths
    run("mkdir -p " .. shell_quote(dir .. "/tmp"))
    local servers = {}
    for _, name in ipairs{ "good", "wrong_host", "expired" } do
      local port = util.free_port()
      self.ports[name] = port
      self.urls[name] = "https://127.0.0.1:" .. port
      servers[#servers + 1] = { port = port, cert = paths[name].cert, key = paths[name].key }
    end
    write_file(dir .. "/nginx.conf", nginx_conf(dir, upstream, servers))
    local q = shell_quote
    -- The inner shell starts nginx, then blocks reading its stdin (our pipe); on EOF it stops nginx.
    local inner = string.format("%s -p %s -c %s -e %s & echo $! > %s; cat > /dev/null; kill $(cat %s) 2>/dev/null;"
      .. " wait", q(find_nginx()), q(dir .. "/"), q(dir .. "/nginx.conf"), q(dir .. "/error.log"),
      q(dir .. "/nginx.shell.pid"), q(dir .. "/nginx.shell.pid"))
    self.pipe = assert(io.popen("exec env -u LD_PRELOAD sh -c " .. q(inner) .. " > " .. q(dir .. "/nginx.out")
      .. " 2>&1", "w"))
    local all = util.poll(function()
      for _, port in pairs(self.ports) do
        if not util.listening(port) then return false end
      end
      return true
    end, 10)
    if not all then
      error("nginx did not start listening:\n" .. (read_file(dir .. "/error.log") or "")
        .. (read_file(dir .. "/nginx.out") or ""))
    end
  end)
  if not ok then
    self:stop()
    error(err, 2)
  end
  return self
end

function Front:stop()
  if self.stopped then return end
  self.stopped = true
  if self.pipe then pcall(self.pipe.close, self.pipe) end  -- EOF: the shell stops nginx and waits for it
  if self.dir and self.dir:find("/iotexplorer%-tls%.") then
    util.rm_rf(self.dir)
  end
end

return M

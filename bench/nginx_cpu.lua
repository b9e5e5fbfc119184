-- The "nginx worker CPU per call" rows of `make bench`: one nginx worker (bench/nginx_lua.conf.in) serving
-- GET requests at a fixed concurrency, each making one DescribeBatchProduction call to the fast local server,
-- four ways: the README's handler with the nginx upstream transport (ngx_http.lua), the same with the
-- thread pool, the transport without the client around it, and a hand-rolled handler (core.sign + cjson +
-- a kept-alive cosocket). The figure is the worker's own CPU time (/proc/PID/task/*/schedstat, the thread
-- pool's threads included) over the calls it answered. Cases interleaved per round.
--
--   lua5.4 bench/nginx_cpu.lua UPSTREAM_URL BINDIR [ROUNDS] [SECONDS] [CONCURRENCY]
--
-- Prints a table and, last, "NGINXCPU <ours/handrolled median ratio>" for the runner. Not a spec.
package.path = "./?.lua;lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path

local nginx = require("helpers.nginx")
local util = require("helpers.util")
local bench = require("bench.util")
local sh, median = bench.sh, bench.median

local upstream_url = assert(arg[1], "usage: nginx_cpu.lua UPSTREAM_URL BINDIR [ROUNDS] [SECONDS] [CONCURRENCY]")
local bindir = assert(arg[2])
local ROUNDS, SECONDS, CONCURRENCY = tonumber(arg[3] or "3"), tonumber(arg[4] or "2"), tonumber(arg[5] or "16")
local CASES = {
  { name = "ours", label = "README handler, nginx upstream (ngx_http.lua)" },
  { name = "ours_thread", label = "README handler, thread pool" },
  { name = "transport", label = "ngx_http.lua alone, without the client" },
  { name = "handrolled", label = "hand-rolled: core.sign + cjson + cosocket" },
}
local QUERY = "?product=R32ONVL0EU&batch=LC-ya6zinv9"

-- Every thread of the worker (the thread pool's too): nanoseconds on a CPU.
local function cpu_ns(pid)
  local total = 0
  for tid in sh("ls /proc/" .. pid .. "/task"):gmatch("%d+") do
    local text = util.read_file("/proc/" .. pid .. "/task/" .. tid .. "/schedstat")
    total = total + (tonumber(text and text:match("^(%d+)")) or 0)
  end
  return total
end

local ng = nginx.start{ template = "bench/nginx_lua.conf.in",
  vars = { UPSTREAM = upstream_url:match("^http://([^/]+)") } }
local ok, err = pcall(function()
  local worker = tonumber(sh("pgrep -P " .. ng.pid):match("(%d+)"))
  assert(worker, "no nginx worker")
  local two = tonumber(sh("nproc")) >= 2
  local pin_load = ""
  if two then
    -- The worker on CPU 0, the load (and the fast server, pinned by run.sh) on CPU 1.
    sh("taskset -a -p -c 0 " .. worker)
    pin_load = "taskset -c 1 "
  end
  local base = "http://127.0.0.1:" .. ng.port .. "/"
  local function load(case, seconds)
    local out = sh(pin_load .. bindir .. "/load '" .. base .. case .. QUERY .. "' " .. CONCURRENCY .. " " .. seconds)
    local rate, good, bad = out:match("LOAD (%S+) (%d+) (%d+)")
    assert(rate, "load failed: " .. out)
    return tonumber(rate), tonumber(good), tonumber(bad)
  end
  for _, c in ipairs(CASES) do
    local _, good, bad = load(c.name, 0.3)
    assert(good > 0 and bad == 0, c.name .. ": " .. bad .. " failed answers; error.log:\n" .. ng:error_log())
  end
  local results = {}
  for _, c in ipairs(CASES) do results[c.name] = { cpu = {}, rate = {} } end
  for r = 1, ROUNDS do
    for _, c in ipairs(CASES) do
      local before = cpu_ns(worker)
      local rate, good, bad = load(c.name, SECONDS)
      local used = cpu_ns(worker) - before
      if bad > 0 then error(c.name .. ": " .. bad .. " failed answers") end
      results[c.name].cpu[r] = used / 1000 / good
      results[c.name].rate[r] = rate
    end
  end
  local ratio = {}
  for r = 1, ROUNDS do ratio[r] = results.ours.cpu[r] / results.handrolled.cpu[r] end
  print(string.format("%-47s  %22s  %9s  %13s", "handler (one worker, " .. CONCURRENCY .. " concurrent)",
    "worker CPU us/call", "calls/s", "vs hand-rolled"))
  for _, c in ipairs(CASES) do
    local cpu = results[c.name].cpu
    local q = {}
    for r = 1, ROUNDS do q[r] = cpu[r] / results.handrolled.cpu[r] end
    local lo, hi = math.huge, 0
    for _, v in ipairs(cpu) do lo, hi = math.min(lo, v), math.max(hi, v) end
    print(string.format("%-47s  %8.1f [%5.1f-%5.1f]  %9.0f  %12.2fx", c.label, median(cpu), lo, hi,
      median(results[c.name].rate), median(q)))
  end
  print(string.format("NGINXCPU %.3f", median(ratio)))
end)
local serious = ng:serious_errors()
ng:stop()
if not ok then
  io.stderr:write("nginx_cpu.lua: ", tostring(err), "\n")
  os.exit(1)
end
if #serious > 0 then
  io.stderr:write("nginx_cpu.lua: nginx logged:\n", table.concat(serious, "\n"), "\n")
  os.exit(1)
end

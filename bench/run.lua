-- `make bench`: runs every measurement in a process of its own, rounds interleaved (A B C A B C), and prints
-- one table with medians, spreads and ratios to the baselines. Called by bench/run.sh under lua5.4 from
-- the repository root, with nginx already listening:
--
--   lua5.4 bench/run.lua URL BINDIR [SIGNING_ROUNDS]   (calls get 5/3 as many, shorter)
--
-- The machines drift (up to 2x between runs, sometimes within one), so a ratio is taken within each round,
-- between measurements made seconds apart, and the table shows the median of those per-round ratios.
-- Not a spec: busted never loads it.
package.path = "./?.lua;lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local bench = require("bench.util")
local progress = bench.progress
local sh, median, thousands = bench.sh, bench.median, bench.thousands

local url, bindir = assert(arg[1], "usage: run.lua URL BINDIR [ROUNDS]"), assert(arg[2])
local SIGN_ROUNDS = tonumber(arg[3] or "9")
local CALL_ROUNDS = math.floor(SIGN_ROUNDS * 5 / 3)   -- the network is noisier than the CPU: more, shorter rounds
local SIGN_SECONDS, CALL_SECONDS = 0.15, 0.2
local MAX_ROUNDS = math.max(SIGN_ROUNDS, CALL_ROUNDS)
local MEMORY_CALLS, MEMORY_MARK = 100000, 10000
local RATE_SECONDS = 5
local INTERPS = { "lua5.4", "luajit" }
-- run.sh pins the server to one CPU and asks for the timed clients on the other (see there).
local PIN = os.getenv("BENCH_PIN") or ""
if PIN ~= "" then PIN = PIN .. " " end

local clock = require("socket").gettime
local started, t0 = os.time(), clock()

local function first_line(text)
  return (text or ""):match("^[^\n]*") or ""
end

local failures = {}

local function numbers(line)
  local values = {}
  for v in line:gmatch("%S+") do values[#values + 1] = tonumber(v) end
  return values
end

-- Reads a finished measurement's output; returns the numbers of its tagged line, or nil (recorded).
local function parse(cmd, text, tag)
  local line = text:match((tag or "RESULT") .. " ([^\n]+)")
  if not line then
    failures[#failures + 1] = cmd .. "\n" .. text
    io.stderr:write("bench: failed: ", cmd, "\n", text, "\n")
    return nil
  end
  return numbers(line)
end

local function measure(cmd, tag)
  return parse(cmd, sh(cmd), tag)
end

-- Several measurements at once (for those that do not time CPU against each other).
local function measure_all(cmds, tag)
  local pipes, results = {}, {}
  for i, cmd in ipairs(cmds) do pipes[i] = assert(io.popen(cmd .. " 2>&1")) end
  for i, cmd in ipairs(cmds) do
    local text = pipes[i]:read("*a")
    pipes[i]:close()
    results[i] = parse(cmd, text, tag)
  end
  return results
end

-- Runs every case n times, interleaved; returns name -> { rate = {[round] = v}, cpu = {[round] = v} }.
local function rounds(cases, n)
  local results = {}
  for _, c in ipairs(cases) do results[c.name] = { rate = {}, cpu = {} } end
  for r = 1, n do
    for _, c in ipairs(cases) do
      local v = measure(PIN .. c.cmd)
      if v then
        results[c.name].rate[r] = v[1]
        results[c.name].cpu[r] = v[2]
      end
    end
  end
  return results
end

local function spread(t)
  local lo, hi = math.huge, -math.huge
  for _, v in pairs(t) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  return lo, hi
end

-- Median over rounds of a[r] / b[r]: both measured within seconds of each other. field: "cpu" (the default)
-- or "rate".
local function paired(a, b, field)
  if not a or not b then return nil end
  field = field or "cpu"
  local q = {}
  for r = 1, MAX_ROUNDS do
    if a[field][r] and b[field][r] then q[r] = a[field][r] / b[field][r] end
  end
  return median(q)
end

-- Median over rounds of a[r] - b[r].
local function paired_difference(a, b)
  if not a or not b then return nil end
  local d = {}
  for r = 1, MAX_ROUNDS do
    if a.cpu[r] and b.cpu[r] then d[r] = a.cpu[r] - b.cpu[r] end
  end
  return median(d)
end

local function num(v)
  if v == nil then return "n/a" end
  if v >= 100 then return string.format("%.0f", v) end
  if v >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end


local function cpu_cell(r)
  if not r or not median(r.cpu) then return "failed" end
  local lo, hi = spread(r.cpu)
  return string.format("%s [%s-%s]", num(median(r.cpu)), num(lo), num(hi))
end

local function x(v)
  return v and string.format("%.2fx", v) or "n/a"
end

local function row(widths, cells)
  local parts = {}
  for i, c in ipairs(cells) do
    parts[i] = string.format((i == 1 and "%-" or "%") .. widths[i] .. "s", c)
  end
  return table.concat(parts, "  ")
end

local lines = {}
local function out(s) lines[#lines + 1] = s or "" end

-- The project's targets lead the list; what else is measured against a bar follows.
local targets, also = {}, {}
local function verdict(list, ok, text)
  local mark = ok == nil and "  [ n/a  ] " or ok and "  [ MET  ] " or "  [MISSED] "
  list[#list + 1] = mark .. text
end

-- nil (no figure: the measurement failed), or whether the ratio v meets the bar.
local function within(v, limit)
  if v == nil then return nil end
  return v <= limit
end
local function at_least(v, limit)
  if v == nil then return nil end
  return v >= limit
end

local function driver(interp, mode, seconds, ...)
  return string.format("%s bench/driver.lua %s %s %s", interp, mode, seconds, table.concat({ ... }, " "))
end

-- ---------------------------------------------------------------------------
-- 1. Signing

progress(string.format("signing: %d interleaved rounds", SIGN_ROUNDS))
local sign_cases = {
  { name = "naive", cmd = bindir .. "/sign_naive " .. SIGN_SECONDS },
  { name = "tuned", cmd = bindir .. "/sign_tuned " .. SIGN_SECONDS .. " warm" },
  { name = "tuned_cold", cmd = bindir .. "/sign_tuned " .. SIGN_SECONDS .. " cold" },
  { name = "tc3", cmd = bindir .. "/sign_tc3 " .. SIGN_SECONDS .. " warm" },
  { name = "tc3_cold", cmd = bindir .. "/sign_tc3 " .. SIGN_SECONDS .. " cold" },
}
for _, interp in ipairs(INTERPS) do
  for _, mode in ipairs({ "sign_core_warm", "sign_core_cold", "sign_luaossl" }) do
    sign_cases[#sign_cases + 1] = { name = interp .. " " .. mode, cmd = driver(interp, mode, SIGN_SECONDS) }
  end
end
-- The bound signer (bench/signer.lua): the C API on both, and signer.lua's FFI entry on LuaJIT.
for _, c in ipairs({ { "lua5.4", "bound" }, { "luajit", "bound" }, { "luajit", "bound_capi" } }) do
  sign_cases[#sign_cases + 1] = { name = c[1] .. " " .. c[2],
    cmd = string.format("%s bench/signer.lua %s %s", c[1], c[2], SIGN_SECONDS) }
end
local S = rounds(sign_cases, SIGN_ROUNDS)

out(string.format("1. Signing: CPU microseconds per signature, median [min-max] of %d rounds; signatures/s",
  SIGN_ROUNDS))
local sw = { 45, 6, 17, 9, 7, 7, 8 }
out(row(sw, { "case", "interp", "CPU us/sig", "sig/s", "vs (b)", "vs (a)", "(c)/this" }))
local function sign_row(label, interp, r, luaossl)
  out(row(sw, { label, interp, cpu_cell(r), thousands(r and median(r.rate)), x(paired(r, S.tuned)),
    x(paired(r, S.naive)), luaossl and x(paired(luaossl, r)) or "" }))
end
sign_row("(a) C naive: HMAC()/SHA256(), key every time", "C", S.naive)
sign_row("(b) C written well, key cached: the limit", "C", S.tuned)
sign_row("    the same, key derived every time", "C", S.tuned_cold)
sign_row("src/tc3.c from C, key cache warm", "C", S.tc3)
sign_row("src/tc3.c from C, key cache cold", "C", S.tc3_cold)
for _, interp in ipairs(INTERPS) do
  local luaossl = S[interp .. " sign_luaossl"]
  sign_row("core.sign (explaining signer), key cache warm", interp, S[interp .. " sign_core_warm"], luaossl)
  sign_row("core.sign (explaining signer), key cache cold", interp, S[interp .. " sign_core_cold"], luaossl)
  sign_row("(c) hand-rolled Lua + luaossl", interp, luaossl, luaossl)
  sign_row(interp == "luajit" and "core.signer bound, signer.lua (FFI entry)" or "core.signer bound (C API)",
    interp, S[interp .. " bound"], luaossl)
  if interp == "luajit" then sign_row("core.signer bound, C API entry", interp, S["luajit bound_capi"], luaossl) end
end
out("  vs (b), vs (a): CPU per signature over the baseline's (lower is better); (c)/this: times less CPU than the")
out("  hand-rolled signer. Ratios are medians of per-round ratios; \"cold\": a new key and date every signature.")
out("  core.sign is the explaining signer: besides the headers it returns the canonical request and the string to")
out("  sign (for reading a signature mismatch), so it reads a request table and builds three tables per call.")
out("  The bound signer (core.signer: credentials, host and region bound once, returns the Authorization) is the")
out("  one calls pay for; the target is its row (the FFI entry on LuaJIT, as signer.lua picks it).")
for _, interp in ipairs(INTERPS) do
  local bound = paired(S[interp .. " bound"], S.tuned)
  verdict(targets, within(bound, 1.2), string.format(
    "%-6s signer (core.signer bound, warm key cache) within 1.2x of the well-written C loop: %s", interp, x(bound)))
end
for _, interp in ipairs(INTERPS) do
  local warm, luaossl = S[interp .. " sign_core_warm"], S[interp .. " sign_luaossl"]
  local to_limit, speedup = paired(warm, S.tuned), paired(luaossl, warm)
  verdict(also, within(to_limit, 1.5),
    string.format("%-6s core.sign (warm) within 1.5x of the well-written C loop: %s", interp, x(to_limit)))
  verdict(also, at_least(speedup, 8),
    string.format("%-6s core.sign (warm) at least 8x faster than hand-rolled luaossl: %s", interp, x(speedup)))
end
out(string.format("  src/tc3.c alone (what a call pays to sign) is %s the limit warm, %s cold.",
  x(paired(S.tc3, S.tuned)), x(paired(S.tc3_cold, S.tuned_cold))))

-- ---------------------------------------------------------------------------
-- 2. A call

progress(string.format("calls: %d interleaved rounds against nginx at %s", CALL_ROUNDS, url))
local call_cases = { { name = "floor", cmd = bindir .. "/floor_post " .. url .. " " .. CALL_SECONDS } }
for _, interp in ipairs(INTERPS) do
  for _, mode in ipairs({ "call_client", "call_core", "call_handrolled", "call_client_newconn", "call_many" }) do
    call_cases[#call_cases + 1] = { name = interp .. " " .. mode, cmd = driver(interp, mode, CALL_SECONDS, url) }
  end
end
local C = rounds(call_cases, CALL_ROUNDS)

out()
out("2. A call (DescribeBatchProduction, nginx on loopback, sequential but for call_many): client CPU us per call")
out(string.format("   (user+sys of the client process, not wall time), median [min-max] of %d rounds; calls/s (wall)",
  CALL_ROUNDS))
local cw = { 47, 6, 19, 8, 8, 10 }
out(row(cw, { "case", "interp", "CPU us/call", "calls/s", "vs (a)", "(b)/this" }))
local function call_row(label, interp, r, hand)
  out(row(cw, { label, interp, cpu_cell(r), thousands(r and median(r.rate)), x(paired(r, C.floor)),
    hand and x(paired(hand, r)) or "" }))
end
call_row("(a) floor: C + libcurl, everything precomputed", "C", C.floor)
for _, interp in ipairs(INTERPS) do
  local hand = C[interp .. " call_handrolled"]
  call_row("client:describe_batch_production, keep-alive", interp, C[interp .. " call_client"], hand)
  call_row("core.call (no Lua layer)", interp, C[interp .. " call_core"], hand)
  call_row(interp == "luajit" and "(b) hand-rolled: lua-curl + luaossl + cjson"
    or "(b) hand-rolled: socket.http + luaossl + cjson", interp, hand, hand)
  call_row("(c) our client, new client+connection per call", interp, C[interp .. " call_client_newconn"], hand)
  call_row("client:call_many (8 at once), per call", interp, C[interp .. " call_many"], hand)
end
out("  vs (a): CPU per call over the floor's; (b)/this: times less CPU than the hand-rolled client (medians of")
out("  per-round ratios). socket.http has no keep-alive, so the Lua 5.4 hand-rolled row pays a connection per call;")
out("  lua-curl keeps its easy handle, hence its connection. call_many: batches of 64 DescribeBatchProduction,")
out("  8 transfers in flight on one multi handle, every answer checked; CPU per call of the batch, calls/s (wall).")
for _, interp in ipairs(INTERPS) do
  local client, core = C[interp .. " call_client"], C[interp .. " call_core"]
  out(string.format("  %s: core - floor %s us, client - core (the Lua layer) %s us/call, medians of per-round "
    .. "differences;", interp, num(paired_difference(core, C.floor)), num(paired_difference(client, core))))
  out(string.format("          the floor itself is %s less CPU than the hand-rolled client: the most (b)/this can be",
    x(paired(C[interp .. " call_handrolled"], C.floor))))
  local many = C[interp .. " call_many"]
  out(string.format("          call_many: CPU per call %s the floor's, %s the sequential client's; calls/s %s the "
    .. "client's", x(paired(many, C.floor)), x(paired(many, client)), x(paired(many, client, "rate"))))
end
for _, interp in ipairs(INTERPS) do
  local to_floor = paired(C[interp .. " call_client"], C.floor)
  verdict(targets, within(to_floor, 1.15), string.format(
    "%-6s client:describe_batch_production CPU per call within 1.15x of the floor: %s", interp, x(to_floor)))
end
for _, interp in ipairs(INTERPS) do
  local speedup = paired(C[interp .. " call_handrolled"], C[interp .. " call_client"])
  verdict(also, at_least(speedup, 2),
    string.format("%-6s client CPU per call at least 2x less than hand-rolled: %s", interp, x(speedup)))
end

-- ---------------------------------------------------------------------------
-- 2b. nginx worker CPU per call (bench/nginx_cpu.lua starts its own one-worker nginx against this server)

progress("nginx worker CPU per call: README handler vs hand-rolled, 16 concurrent")
local nginx_text = sh(string.format("lua5.4 bench/nginx_cpu.lua %s %s %d 2 16", url, bindir, CALL_ROUNDS))
out()
out(string.format("2b. nginx worker CPU per call (one worker, 16 concurrent, medians of %d interleaved rounds of 2 s)",
  CALL_ROUNDS))
local nginx_ratio = tonumber(nginx_text:match("NGINXCPU (%S+)"))
for line in nginx_text:gmatch("[^\n]+") do
  if not line:find("^NGINXCPU") then out(line) end
end
if not nginx_ratio then failures[#failures + 1] = "bench/nginx_cpu.lua\n" .. nginx_text end
verdict(targets, within(nginx_ratio, 1.1),
  string.format("nginx   README handler within 1.1x of the hand-rolled one (worker CPU/call): %s", x(nginx_ratio)))

-- ---------------------------------------------------------------------------
-- 3. Memory (both interpreters at once: RSS does not care, and it halves the time)

progress(string.format("memory: %d calls on each interpreter", MEMORY_CALLS))
local memory_cmds = {}
for i, interp in ipairs(INTERPS) do
  memory_cmds[i] = driver(interp, "memory", 0, url, MEMORY_CALLS, MEMORY_MARK)
end
local M = measure_all(memory_cmds, "MEMORY")
out()
out(string.format("3. Memory: one process, one client, %s calls (kB, /proc/self/status)", thousands(MEMORY_CALLS)))
local mw = { 8, 13, 14, 17, 13, 21 }
out(row(mw, { "interp", "VmRSS @ 10k", "VmRSS @ 100k", "growth 10k-100k", "peak VmHWM", "Lua heap kB @10k/end" }))
for i, interp in ipairs(INTERPS) do
  local v = M[i]
  if v then
    local growth = v[4] - v[3]
    out(row(mw, { interp, thousands(v[3]), thousands(v[4]), thousands(growth), thousands(v[9]),
      thousands(v[5]) .. " / " .. thousands(v[6]) }))
    verdict(also, growth < 1024, string.format("%-6s RSS growth under 1 MB over %s calls: %s kB", interp,
      thousands(MEMORY_CALLS - MEMORY_MARK), thousands(growth)))
  else
    out(row(mw, { interp, "failed", "", "", "", "" }))
    verdict(also, nil, interp .. " RSS growth: the measurement failed")
  end
end

-- ---------------------------------------------------------------------------
-- 4. Under the rate limit (both interpreters at once, one secret id each: the emulator limits per secret id)

progress(string.format("rate limit: emulator, %d s", RATE_SECONDS))
local emu = require("helpers.emulator").start{}
local R = measure_all({
  driver("lua5.4", "ratelimit", RATE_SECONDS, emu.url, emu.secret_id, emu.secret_key),
  driver("luajit", "ratelimit", RATE_SECONDS, emu.url, emu.tmp_secret_id, emu.tmp_secret_key, emu.tmp_token),
}, "RATELIMIT")
local ok, counters = pcall(emu.counters, emu)
if not ok then counters = {} end
emu:stop()
out()
out(string.format("4. Under the rate limit: the client's default rate_limit (20/s) against the emulator's 20/s per "
  .. "secret id, %d s", RATE_SECONDS))
local rw = { 8, 6, 7, 10, 8, 28 }
out(row(rw, { "interp", "calls", "failed", "sends/s", "vs 20/s", "RequestLimitExceeded seen" }))
for i, interp in ipairs({ "lua5.4", "luajit" }) do
  local v = R[i]
  if v then
    out(row(rw, { interp, tostring(v[1]), tostring(v[2]), string.format("%.2f", v[4]),
      string.format("%+.1f%%", (v[4] / 20 - 1) * 100), tostring(v[3]) }))
    verdict(also, math.abs(v[4] / 20 - 1) <= 0.05 and v[3] == 0 and v[2] == 0,
      string.format("%-6s within 5%% of 20/s with zero RequestLimitExceeded: %.2f/s, %d seen", interp, v[4], v[3]))
  else
    out(row(rw, { interp, "failed", "", "", "", "" }))
    verdict(also, nil, interp .. " rate limit: the measurement failed")
  end
end
local function int(v) return type(v) == "number" and string.format("%d", v) or "?" end
out(string.format("  emulator: %s requests, %s answered RequestLimitExceeded, at most %s in one second for one "
  .. "secret id;",
  int(counters.requests), int(counters.rate_limited), int(counters.max_per_second)))
out("  the limiter spaces sends 1/(20 x 0.96) s apart on purpose (limiter.MARGIN), i.e. 19.2/s.")

-- ---------------------------------------------------------------------------
-- The machine, then everything at once.

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local cpu_model = (read("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "unknown CPU"
local versions = {
  (first_line(sh("nginx -v")):gsub("^nginx version: ", "")),
  first_line(sh("curl-config --version")),
  first_line(sh("openssl version")):match("^(OpenSSL %S+)")
    or "libssl3 " .. first_line(sh("dpkg-query -W -f='${Version}' libssl3")),
  first_line(sh("lua5.4 -v")):match("^(Lua %S+)") or "Lua 5.4",
  first_line(sh("luajit -v")):match("^(LuaJIT %S+)") or "LuaJIT",
}

local rule = string.rep("=", 112)
print()
print(rule)
print(string.format("tencentcloud-iotexplorer: make bench, %s UTC, %.0f s", os.date("!%Y-%m-%d %H:%M", started),
  clock() - t0))
print(string.format("machine: nproc %s, %s, %s", first_line(sh("nproc")), cpu_model, first_line(sh("uname -sr"))))
print("software: " .. table.concat(versions, ", "))
print(string.format("%d rounds for signing, %d for calls, cases interleaved (A B C A B C), one process per "
  .. "measurement;", SIGN_ROUNDS, CALL_ROUNDS))
print("compare only figures of one run")
print(PIN ~= "" and "timed clients pinned to CPU 0, nginx to CPU 1 (taskset)" or "no CPU pinning (one CPU)")
print(rule)
for _, l in ipairs(lines) do print(l) end
print()
print("Targets:")
for _, v in ipairs(targets) do print(v) end
print("Also measured:")
for _, v in ipairs(also) do print(v) end
if #failures > 0 then
  print()
  print(#failures .. " measurement(s) failed; the first one's output:")
  print(failures[1])
  os.exit(1)
end

-- `make profile`: where a call's user-space instructions go, by callgrind, reproducibly (instruction counts
-- do not drift with the machine's load as CPU time does). Called by bench/profile.sh under lua5.4 from the
-- repository root, with nginx already listening:
--
--   lua5.4 bench/profile.lua URL BINDIR OUTDIR [N] [INTERPRETERS]   (INTERPRETERS: "lua5.4 luajit")
--
-- Every case runs twice, N and 3N calls (floor_post's and driver.lua's COUNT), each in a process of its own
-- under callgrind; a figure per call is (I(3N) - I(N)) / 2N, so start-up and the first call (the
-- connection) cancel. Functions are read from callgrind_annotate: inclusive figures of the plain entry of a
-- function (never its recursive ones, named f'2, whose inclusive figures count nested calls again); where a
-- function stands under several file names (inlined code from other files), the largest. The Lua layer is
-- split by the objects whose own (self) instructions grew: the interpreter's binary (and on LuaJIT the
-- code its JIT compiled, which callgrind sees in no object) against every other, the C functions.
-- Not a spec: busted never loads it.
package.path = "./?.lua;spec/?.lua;" .. package.path
local bench = require("bench.util")
local thousands = bench.thousands

local url, bindir, outdir = arg[1], arg[2], arg[3]
assert(url and bindir and outdir, "usage: profile.lua URL BINDIR OUTDIR [N] [INTERPRETERS]")
local N = tonumber(arg[4] or "1000")
local INTERPS = {}
for name in (arg[5] or "lua5.4 luajit"):gmatch("%S+") do INTERPS[#INTERPS + 1] = name end

local progress = bench.progress
local quote = require("helpers.util").shell_quote

-- Starts cmd under callgrind for `count` calls; returns a function that waits for it and returns the
-- profile's path. Both counts of a case run at once: what one process executes does not depend on the other.
local function start(name, cmd, count)
  local base = string.format("%s/%s-%d", outdir, name, count)
  local p = assert(io.popen(string.format(
    "valgrind --tool=callgrind --callgrind-out-file=%s %s %d 2>%s", quote(base .. ".out"), cmd, count,
    quote(base .. ".log"))))
  return function()
    local text = p:read("*a")
    p:close()
    local done = tonumber(text:match("RESULT %S+ %S+ (%d+)"))
    if done ~= count then
      io.stderr:write("profile: ", cmd, " ", count, " did not make its calls:\n", text, "\n",
        bench.sh("tail -n 20 " .. quote(base .. ".log")), "\n")
      os.exit(1)
    end
    return base .. ".out"
  end
end

local function number(s)
  return tonumber((s:gsub(",", "")))
end

local function split(entry)
  local place, object = entry:match("^(.-) %[(.*)%]$")
  place = place or entry
  return place:match("^[^:]*:(.*)$") or place, object
end

-- One callgrind_annotate listing: { total = n, [entry] = n }, entry "file:function [object]" as printed.
-- Inclusive listings come as a caller tree ("< caller (Nx)" lines above "* function"): then also
-- calls[function name] = how many times it was called, from all its callers.
local function annotate(file, inclusive)
  local text = bench.sh(string.format("callgrind_annotate --auto=no --threshold=100 --inclusive=%s %s %s",
    inclusive and "yes" or "no", inclusive and "--tree=caller" or "", quote(file)))
  local listing, calls = {}, {}
  local callers = 0
  for count, mark, entry in text:gmatch("\n%s*([%d,]+) %([^)]*%)%s+([<*]?)%s*([^\n]+)") do
    if mark == "<" then
      callers = callers + number(entry:match("%(([%d,]+)x%)") or "0")
    else
      if entry == "PROGRAM TOTALS" then listing.total = number(count)
      else
        listing[entry] = (listing[entry] or 0) + number(count)
        local fn = split(entry)
        calls[fn] = (calls[fn] or 0) + callers
      end
      callers = 0
    end
  end
  assert(listing.total, "callgrind_annotate printed no totals for " .. file)
  return listing, calls
end

-- What the tables need of one profile: its total, the inclusive figure of each plain function entry (the
-- largest where it stands under several files), and the self figures by object.
local function digest(file)
  local inclusive, calls = annotate(file, true)
  local by_fn = {}
  for entry, count in pairs(inclusive) do
    if entry ~= "total" then
      local fn = split(entry)
      if not fn:find("'%d+$") and count > (by_fn[fn] or 0) then by_fn[fn] = count end
    end
  end
  -- Entries printed without an object (code inlined from another file) go where the function's others are.
  local self, object_of = annotate(file, false), {}
  for entry in pairs(self) do
    local fn, object = split(entry)
    if object then object_of[fn] = object end
  end
  local by_object = {}
  for entry, count in pairs(self) do
    if entry ~= "total" then
      local fn, object = split(entry)
      object = object or object_of[fn] or "(no object named)"
      by_object[object] = (by_object[object] or 0) + count
    end
  end
  return { total = inclusive.total, fn = by_fn, object = by_object, calls = calls }
end

-- Runs a case for N and 3N calls; returns its figures per call: total, fn[name], object[path].
local function per_call(name, cmd)
  progress(string.format("%s: %d and %d calls under callgrind", name, N, 3 * N))
  local wait_small, wait_large = start(name, cmd, N), start(name, cmd, 3 * N)
  local small, large = digest(wait_small()), digest(wait_large())
  local function diff(a, b)
    local d = {}
    for k, v in pairs(b) do d[k] = (v - (a[k] or 0)) / (2 * N) end
    for k, v in pairs(a) do if not b[k] then d[k] = -v / (2 * N) end end
    return d
  end
  return { total = (large.total - small.total) / (2 * N), fn = diff(small.fn, large.fn),
    object = diff(small.object, large.object), calls = diff(small.calls, large.calls) }
end

local function fn(r, name) return r.fn[name] or 0 end

-- How many turns libcurl's loop took per transfer: 1 when the answer was there at the first read, more when
-- it had to wait for it (each turn costs about a thousand instructions). Under callgrind the client is slow
-- enough that the answer is usually there; how often it is not depends on the machine's load.
local function turns(r)
  local transfers = r.calls.curl_easy_perform or 0
  return transfers > 0 and string.format("%.2f", (r.calls.curl_multi_perform or 0) / transfers) or "n/a"
end

local lines = {}
local function out(label, value, note)
  lines[#lines + 1] = string.format("%-56s %10s%s", label, thousands(value), note and ("   " .. note) or "")
end
local function signed(v)
  return (v >= 0 and "+" or "-") .. thousands(math.abs(v))
end

local floor = per_call("floor", quote(bindir .. "/floor_post") .. " " .. quote(url) .. " 0")
local function driver(interp, mode)
  return string.format("%s bench/driver.lua %s 0 %s", interp, mode, quote(url))
end

for i, interp in ipairs(INTERPS) do
  local core = per_call(interp .. " core.call", driver(interp, "call_core"))
  local client = per_call(interp .. " client", driver(interp, "call_client"))
  if i > 1 then lines[#lines + 1] = "" end
  lines[#lines + 1] = string.format("instructions per call (callgrind, user space, %s, N=%d vs %d)", interp, N,
    3 * N)
  out("floor (C + libcurl)", floor.total)
  out("core.call", core.total, "(" .. signed(core.total - floor.total) .. " over the floor)")
  local perform, sign = fn(core, "curl_easy_perform"), fn(core, "tc3_sign")
  local decode, build, call = fn(core, "decode_response"), fn(core, "call_build"), fn(core, "core_call")
  out("  libcurl (curl_easy_perform)", perform,
    string.format("(floor's: %s, %s)", thousands(fn(floor, "curl_easy_perform")),
      signed(perform - fn(floor, "curl_easy_perform"))))
  lines[#lines + 1] = string.format("%-56s %10s   (floor's: %s)",
    "    its loop's turns (curl_multi_perform calls)", turns(core), turns(floor))
  out("  signing (tc3_sign)", sign)
  out("  JSON decoding (decode_response)", decode)
  out("  request: read, encode, headers (call_build - tc3_sign)", build - sign)
  out("  rest", core.total - perform - decode - build)
  out("    in core_call (http_perform around libcurl, ...)", call - perform - decode - build)
  out("    around core_call (the driving Lua loop, os.time)", core.total - call)
  out("client:describe_batch_production", client.total,
    "(" .. signed(client.total - core.total) .. " over core.call: the Lua layer)")
  -- The interpreter's own code: its binary (both are linked statically) and, on LuaJIT, the compiled traces.
  local interp_delta, c_delta, c_objects = 0, 0, {}
  local objects = {}
  for object in pairs(client.object) do objects[object] = true end
  for object in pairs(core.object) do objects[object] = true end
  for object in pairs(objects) do
    local d = (client.object[object] or 0) - (core.object[object] or 0)
    if object:find("/" .. interp .. "$") or object == "???" then
      interp_delta = interp_delta + d
    else
      c_delta = c_delta + d
      c_objects[#c_objects + 1] = { object = object, d = d }
    end
  end
  out(string.format("  the interpreter's own (%s binary%s)", interp, interp == "luajit" and ", traces" or ""),
    interp_delta)
  out("  C functions", c_delta)
  table.sort(c_objects, function(a, b) return math.abs(a.d) > math.abs(b.d) end)
  for k = 1, math.min(5, #c_objects) do
    local o = c_objects[k]
    if math.abs(o.d) >= 100 then out("    " .. (o.object:match("[^/]+$") or o.object), o.d) end
  end
  out("  inside core_call (the client's core_call - core.call's)", fn(client, "core_call") - call)
end
for _, note in ipairs{
  "",
  "Functions: inclusive figures of their plain callgrind_annotate entries, never the recursive f'2 ones (whose",
  "inclusive figures count nested calls again); curl_easy_perform's include the callbacks libcurl calls (body",
  "and header handlers). \"rest\": core.call's total minus the rows above it. The Lua layer is split by the",
  "objects whose own (self) instructions grew; \"inside core_call\" cuts across that split. Run to run,",
  "libcurl moves by up to 3 thousand (a loop turn more whenever the answer is not there yet: see \"turns\"),",
  "the interpreters by about 2 thousand (where garbage collection steps and LuaJIT's traces fall); the rest",
  "repeats to a few instructions.",
} do lines[#lines + 1] = note end
print(table.concat(lines, "\n"))
progress("done")

-- Harness of build/fuzz/fuzz_encode (spec/fuzz/fuzz_encode.c); spec/encode_spec.lua runs it too, on Lua 5.4
-- and LuaJIT. Bytes -> a Lua value -> core.json_encode -> read back by lua-cjson and by the strict reader
-- below -> compared with the value given.
-- Input: a little program. Each value starts with one byte whose value mod 16 picks its kind (see `value`),
-- followed by the bytes that kind reads; past the end every byte reads as 0, so any input is a value.
-- Invariants: json_encode never raises. It refuses exactly the values that hold something JSON cannot carry
-- (NaN, an infinity, a function or coroutine, a table that is neither an array nor an object, nesting past
-- 64 tables, a cycle), and then names one of the places the value holds such a thing, the way the encoder
-- writes paths. Otherwise the text is strict RFC 8259 JSON (the reader here refuses what cjson would let
-- through) and reads back as the value given: strings byte for byte; numbers as the same doubles through
-- cjson, and through the reader integers exactly on Lua 5.4; [] and {} kept apart; cjson.null as null.
-- luacheck: globals fuzz_one
local core = require("tencentcloud.iotexplorer.core")
local cjson = require("cjson.safe")

local decoder = cjson.new()
decoder.decode_max_depth(1000)
decoder.decode_invalid_numbers(false)
local NULL = cjson.null
local HAS_INTEGERS = math.type ~= nil
local MAX_DEPTH = 64
local PATH_CAP = 160                   -- jsonenc_error.path, with its NUL

-- ---- the strict reader ---------------------------------------------------------------------------------

local ARRAY = {}                       -- the reader's arrays carry this metatable: [] and {} stay apart
local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function read_strict(s)
  local pos = 1
  local function fail(why) error("not strict JSON at byte " .. pos .. ": " .. why .. " in " .. s, 0) end
  local function skip_space() pos = s:find("[^ \t\n\r]", pos) or #s + 1 end
  local value

  local function read_string()
    local parts, i = {}, pos + 1
    while true do
      local j = s:find('["\\]', i)
      if not j then fail("an unterminated string") end
      local run = s:sub(i, j - 1)
      if run:find("[\1-\31]") or run:find("\0", 1, true) then fail("a raw control character") end
      parts[#parts + 1] = run
      if s:sub(j, j) == '"' then
        pos = j + 1
        return table.concat(parts)
      end
      local e = s:sub(j + 1, j + 1)
      if ESCAPES[e] then
        parts[#parts + 1] = ESCAPES[e]
        i = j + 2
      elseif e == "u" and s:find("^%x%x%x%x", j + 2) then
        local cp = tonumber(s:sub(j + 2, j + 5), 16)
        if cp >= 0x20 then fail("\\u" .. s:sub(j + 2, j + 5) .. ", where the encoder writes the character") end
        parts[#parts + 1] = string.char(cp)
        i = j + 6
      else
        pos = j
        fail("a bad escape")
      end
    end
  end

  local function read_number()
    local start = pos
    local int = s:match("^-?(%d+)", pos)
    if not int or (#int > 1 and int:sub(1, 1) == "0") then fail("a bad number") end
    pos = s:find("%d", pos) + #int
    local frac = s:match("^%.%d+", pos)
    if s:sub(pos, pos) == "." and not frac then fail("a bad fraction") end
    pos = pos + #(frac or "")
    local exp = s:match("^[eE][+-]?%d+", pos)
    if s:find("^[eE]", pos) and not exp then fail("a bad exponent") end
    pos = pos + #(exp or "")
    local n = tonumber(s:sub(start, pos - 1))
    if n == math.huge or n == -math.huge then fail("a number past the doubles") end
    return n
  end

  local function read_members(close, read_one)
    pos = pos + 1
    skip_space()
    if s:sub(pos, pos) == close then
      pos = pos + 1
      return
    end
    while true do
      read_one()
      skip_space()
      local c = s:sub(pos, pos)
      pos = pos + 1
      if c == close then return end
      if c ~= "," then fail("neither ',' nor '" .. close .. "'") end
      skip_space()
    end
  end

  function value(depth)
    if depth > MAX_DEPTH + 1 then fail("nesting deeper than the encoder writes") end
    skip_space()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      read_members("}", function()
        if s:sub(pos, pos) ~= '"' then fail("a key that is not a string") end
        local k = read_string()
        if t[k] ~= nil then fail("the key " .. k .. " twice") end
        skip_space()
        if s:sub(pos, pos) ~= ":" then fail("no ':'") end
        pos = pos + 1
        t[k] = value(depth + 1)
      end)
      return t
    elseif c == "[" then
      local t = setmetatable({}, ARRAY)
      read_members("]", function() t[#t + 1] = value(depth + 1) end)
      return t
    elseif c == '"' then
      return read_string()
    elseif s:find("^true", pos) then
      pos = pos + 4
      return true
    elseif s:find("^false", pos) then
      pos = pos + 5
      return false
    elseif s:find("^null", pos) then
      pos = pos + 4
      return NULL
    elseif c:find("^[-%d]") then
      return read_number()
    end
    fail("no value")
  end

  local v = value(0)
  skip_space()
  if pos <= #s then fail("text after the value") end
  return v
end

-- ---- paths, as the encoder writes them -----------------------------------------------------------------

local function key_step(k, first)
  if #k < 80 and k:find("^[%a_][%w_]*$") then return (first and "" or ".") .. k end
  local shown = k:sub(1, 40):gsub('[%c"\\\128-\255]', function(ch) return "\\" .. ch:byte() end)
  return '["' .. shown .. (#k > 40 and "..." or "") .. '"]'
end

local function path_text(steps)
  local out = ""
  for i, st in ipairs(steps) do
    local piece = type(st) == "number" and ("[" .. st .. "]") or key_step(st, i == 1)
    if #out + #piece + 4 >= PATH_CAP then return out .. "..." end
    out = out .. piece
  end
  return out == "" and "value" or out
end

local function with(steps, step)
  local t = {}
  for i = 1, #steps do t[i] = steps[i] end
  t[#t + 1] = step
  return t
end

-- ---- bytes -> values -------------------------------------------------------------------------------------

local function byte(g)
  local b = g.data:byte(g.pos) or 0
  g.pos = g.pos + 1
  return b
end

local function bytes(g, n)
  local s = g.data:sub(g.pos, g.pos + n - 1)
  g.pos = g.pos + n
  return s .. string.rep("\0", n - #s)
end

local function refused(g, steps)
  g.bad[path_text(steps)] = true
  g.nbad = g.nbad + 1
end

-- Any double, from 8 bytes read as sign, 11-bit exponent and 52-bit mantissa (NaN and infinities too).
local function double_bits(g)
  local b = { bytes(g, 8):byte(1, 8) }
  local m = b[1] + b[2] * 2 ^ 8 + b[3] * 2 ^ 16 + b[4] * 2 ^ 24 + b[5] * 2 ^ 32 + b[6] * 2 ^ 40 + (b[7] % 16) * 2 ^ 48
  local e = math.floor(b[7] / 16) + (b[8] % 128) * 16
  local sign = b[8] >= 128 and -1 or 1
  if e == 2047 then return m == 0 and sign * math.huge or 0 / 0 end
  if e == 0 then return sign * m * 2.0 ^ -1074 end
  return sign * (2 ^ 52 + m) * 2.0 ^ (e - 1075)
end

-- Whole numbers: any 64-bit integer on Lua 5.4; on LuaJIT, any double below 2^53 in magnitude.
local function whole(g)
  if string.unpack then return (string.unpack("<i8", bytes(g, 8))) end
  local b = { bytes(g, 7):byte(1, 7) }
  local m = b[1] + b[2] * 2 ^ 8 + b[3] * 2 ^ 16 + b[4] * 2 ^ 24 + b[5] * 2 ^ 32 + b[6] * 2 ^ 40 + (b[7] % 32) * 2 ^ 48
  return b[7] >= 128 and -m or m
end

local EDGES = { 2 ^ 53, -2 ^ 53, 2 ^ 53 - 1, 2 ^ 53 + 2, 2 ^ 63, -2 ^ 63, 2 ^ 64, 0.1, 1 / 3, 1e21, 1e-7, 5e-324,
  2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 123456789012345680000, 0.30000000000000004 }
if HAS_INTEGERS then
  EDGES[#EDGES + 1] = math.maxinteger
  EDGES[#EDGES + 1] = math.mininteger
  EDGES[#EDGES + 1] = 9007199254740993
end

local value

-- A table at the limit: the encoder refuses it, whatever it holds.
local function too_deep(g, steps, depth)
  if depth < MAX_DEPTH then return false end
  refused(g, steps)
  return true
end

-- Tables that are neither arrays nor objects, things JSON has no form for, and cycles.
local function hostile(g, steps, depth)
  local k = byte(g) % 9
  if k == 0 then
    refused(g, steps)
    return print
  elseif k == 1 then
    refused(g, steps)
    return coroutine.create(print)
  end
  local t = {}
  if too_deep(g, steps, depth) then return t end
  if k == 8 then                       -- a cycle: the encoder gives up at the table past the limit
    t.self = t
    local cycle = steps
    for _ = depth + 1, MAX_DEPTH do cycle = with(cycle, "self") end
    refused(g, cycle)
    return t
  end
  if k == 2 then
    t[1], t[3] = 1, 3                  -- a hole
  elseif k == 3 then
    t[1], t.x = 1, 2
  elseif k == 4 then
    t[true] = 1
  elseif k == 5 then
    t = core.array()
    t.x = 1                            -- marked as an array, with a string key
  elseif k == 6 then
    t[0] = 1
  else
    t[1.5] = 1
  end
  refused(g, steps)
  return t
end

local function array_value(g, steps, depth)
  local n, flag = byte(g) % 8, byte(g) % 4
  local t = (n == 0 and flag == 1) and core.empty_array or flag == 0 and core.array() or {}
  if too_deep(g, steps, depth) then return t end
  for i = 1, n do t[i] = value(g, with(steps, i), depth + 1) end
  return t
end

local function object_value(g, steps, depth)
  local t = {}
  if too_deep(g, steps, depth) then return t end
  for _ = 1, byte(g) % 8 do
    local k = bytes(g, byte(g) % 12)
    if t[k] == nil then t[k] = value(g, with(steps, k), depth + 1) end
  end
  return t
end

-- A chain of up to 79 nested tables, arrays and objects in turn, around 0: past the limit or not.
local function chain(g, steps, depth)
  local n = byte(g) % 80
  local top, inner, key = 0, nil, nil
  for level = 0, n - 1 do
    local t = {}
    if inner then inner[key] = t else top = t end
    if too_deep(g, steps, depth + level) then return top end
    inner, key = t, level % 2 == 0 and 1 or "k"
    steps = with(steps, key)
  end
  if inner then inner[key] = 0 end
  return top
end

function value(g, steps, depth)
  local kind = byte(g) % 16
  if kind <= 1 then
    return byte(g) - 128
  elseif kind == 2 then
    return whole(g)
  elseif kind == 3 then
    local d = double_bits(g)
    if d ~= d or d == math.huge or d == -math.huge then refused(g, steps) end
    return d
  elseif kind == 4 then
    return (byte(g) - 128) / (byte(g) + 1)
  elseif kind <= 6 then
    return bytes(g, byte(g) % 24)
  elseif kind == 7 then
    return byte(g) % 2 == 1
  elseif kind == 8 then
    return NULL
  elseif kind <= 10 then
    return array_value(g, steps, depth)
  elseif kind <= 12 then
    return object_value(g, steps, depth)
  elseif kind == 13 then
    return hostile(g, steps, depth)
  elseif kind == 14 then
    return chain(g, steps, depth)
  end
  return EDGES[byte(g) % #EDGES + 1]
end

-- ---- the comparison ----------------------------------------------------------------------------------

local function is_marked(t)
  return t == core.empty_array or getmetatable(t) == core.array_mt
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- got (read back by cjson, or by the reader when strict) is the value v that was encoded, at path `at`.
local function same(v, got, strict, at)
  local function differ(why) error(at .. ": " .. why, 0) end
  if type(v) == "number" then
    if type(got) ~= "number" then differ("a number came back as " .. type(got)) end
    if strict and HAS_INTEGERS and math.type(v) == "integer" then
      if math.type(got) ~= "integer" or got ~= v then differ(string.format("%d came back as %.17g", v, got)) end
    elseif v + 0.0 ~= got + 0.0 then
      differ(string.format("%.17g came back as %.17g", v, got))
    end
  elseif type(v) ~= "table" then
    if got ~= v then differ(tostring(v) .. " came back as " .. tostring(got)) end
  else
    if type(got) ~= "table" then differ("a table came back as " .. type(got)) end
    local array = is_marked(v) or v[1] ~= nil
    if strict and array ~= (getmetatable(got) == ARRAY) then
      differ((array and "an array" or "an object") .. " came back as the other")
    end
    if count(got) ~= count(v) then differ(count(v) .. " entries came back as " .. count(got)) end
    for k, x in pairs(v) do same(x, got[k], strict, at .. "/" .. tostring(k)) end
  end
end

function fuzz_one(data)
  local g = { data = data, pos = 1, bad = {}, nbad = 0 }
  local v = value(g, {}, 0)
  local text, err = core.json_encode(v)
  if g.nbad > 0 then
    assert(text == nil, "encoded a value that holds something JSON cannot carry: " .. tostring(text))
    assert(err.code == "ClientError.InvalidParameter" and err.sent == false, "a refusal without its code")
    assert(g.bad[err.field], "refused at " .. err.field .. ", which holds nothing wrong")
    assert(err.message:sub(1, #err.field + 1) == err.field .. " ", "the message does not start with the field")
    return
  end
  assert(text, err and err.message)
  local doc = decoder.decode(text)
  assert(doc ~= nil, "cjson cannot read " .. text)
  same(v, doc, false, "cjson")
  same(v, read_strict(text), true, "reader")
end

return { fuzz_one = fuzz_one, read_strict = read_strict }

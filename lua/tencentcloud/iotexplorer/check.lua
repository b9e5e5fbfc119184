-- The option and parameter checkers, written once. Every checker returns nothing when the value is fine
-- and an error object (errors.invalid, naming the field) when it is not; none raises.
--
-- check.params(action, params) is the one check of an action's parameters, from its table in actions.lua.
-- The client runs it before any I/O; the emulator runs the same function and answers with the service's
-- codes, which the error's `kind` selects (actions.COMMON_PARAMETER_ERRORS):
--   unknown  a key the action does not have          UnknownParameter
--   missing  a required parameter is absent          MissingParameter
--   type     a value of the wrong type or format     InvalidParameter
--   range    a value outside its documented range    InvalidParameterValue

local errors = require("tencentcloud.iotexplorer.errors")

local check = {}

local function invalid(field, message, kind)
  local e = errors.invalid(field, message)
  e.kind = kind or "type"
  return e
end
check.invalid = invalid

-- The per-call and per-client cap on a timeout (the core takes up to a day).
check.MAX_SECONDS = 86400

-- A shallow copy of the table t, made with `next` rather than pairs so that a caller's __pairs or __index
-- never runs: options and parameters are copied once, as they are, before any check reads them.
function check.copy(t)
  local c = {}
  for k, v in next, t do
    c[k] = v
  end
  return c
end

-- ----------------------------------------------------------------------------
-- Suggestions for misspelt names.

-- Levenshtein distance, case-insensitive, stopping early past `limit`.
local function distance(a, b, limit)
  a, b = a:lower(), b:lower()
  if a == b then
    return 0
  end
  if math.abs(#a - #b) > limit then
    return limit + 1
  end
  local prev = {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    local cur, best = { [0] = i }, i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = (ca == b:byte(j)) and 0 or 1
      local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      cur[j] = v
      if v < best then best = v end
    end
    if best > limit then
      return limit + 1
    end
    prev = cur
  end
  return prev[#b]
end

-- The candidate nearest to `name` (a list of strings), or nil when none is close: within a third of the
-- name's length, or differing only in case, or one being the other plus a plural "s".
function check.suggest(name, candidates)
  if type(name) ~= "string" then
    return nil
  end
  local limit = math.max(1, math.floor(#name / 3))
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(name, c, limit)
    if d <= limit and (not best_d or d < best_d) then
      best, best_d = c, d
    end
  end
  return best
end

local function did_you_mean(name, candidates)
  local s = check.suggest(name, candidates)
  return s and (" (did you mean " .. s .. "?)") or ""
end
check.did_you_mean = did_you_mean

-- Refuses keys that are not in `known` (a list of names): a typo would otherwise be silently ignored.
function check.known(t, known, what)
  for k in next, t do
    local found = false
    for _, name in ipairs(known) do
      if k == name then found = true break end
    end
    if not found then
      local key = tostring(k)
      return invalid(key, "unknown " .. what .. " '" .. key .. "'" .. did_you_mean(key, known), "unknown")
    end
  end
end

-- ----------------------------------------------------------------------------
-- Values.

-- True when s is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
-- Plain Lua, so LuaJIT (no utf8 library) runs it too; ASCII-only strings take the fast path.
function check.valid_utf8(s)
  if not s:find("[\128-\255]") then return true end
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    if c < 0x80 then
      i = i + 1
    else
      local len
      local lo, hi = 0x80, 0xBF
      if c >= 0xC2 and c <= 0xDF then len = 2
      elseif c == 0xE0 then len, lo = 3, 0xA0
      elseif c == 0xED then len, hi = 3, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then len = 3
      elseif c == 0xF0 then len, lo = 4, 0x90
      elseif c >= 0xF1 and c <= 0xF3 then len = 4
      elseif c == 0xF4 then len, hi = 4, 0x8F
      else return false end
      local c2 = s:byte(i + 1)
      if not c2 or c2 < lo or c2 > hi then return false end
      for j = i + 2, i + len - 1 do
        local cj = s:byte(j)
        if not cj or cj < 0x80 or cj > 0xBF then return false end
      end
      i = i + len
    end
  end
  return true
end

-- The one rule for strings the library sends or puts in a header: non-empty, no control character
-- (a CR or LF would split a header; the others are never meant), and UTF-8 (JSON text is UTF-8).
function check.string(v, name, label)
  label = label or name
  if type(v) ~= "string" then
    return invalid(name, label .. " must be a string")
  end
  if v == "" then
    return invalid(name, label .. " must not be empty", "range")
  end
  if not v:find("[^ -~]") then   -- printable ASCII (no control character, no byte past 0x7e): one scan
    return nil
  end
  if v:find("%c") then
    return invalid(name, label .. " must not contain control characters")
  end
  if not check.valid_utf8(v) then
    return invalid(name, label .. " must be valid UTF-8")
  end
end

-- An optional string field of t.
function check.opt_string(t, name, label)
  if t[name] ~= nil then
    return check.string(t[name], name, label)
  end
end

local math_type = math.type
local to_integer = math.tointeger or function(v) return v end

-- An integer: a Lua 5.4 integer over its whole range, or a float with an integral value that a double
-- holds exactly (|v| < 2^53; LuaJIT's numbers). Returns the integer (5.4: of integer subtype) or nil.
function check.as_integer(v)
  if type(v) ~= "number" then
    return nil
  end
  if math_type and math_type(v) == "integer" then
    return v
  end
  if v ~= v or v ~= math.floor(v) or v <= -2 ^ 53 or v >= 2 ^ 53 then
    return nil
  end
  return to_integer(v)
end

local function range_text(min, max)
  if min and max then
    return string.format(" from %d to %d", min, max)
  elseif min then
    return string.format(" >= %d", min)
  elseif max then
    return string.format(" <= %d", max)
  end
  return ""
end

-- An optional integer field of t, from min to max; normalised to an integer in place.
function check.integer(t, name, min, max)
  local v = t[name]
  if v == nil then
    return nil
  end
  local i = check.as_integer(v)
  if i == nil then
    return invalid(name, name .. " must be an integer" .. range_text(min, max))
  end
  if (min and i < min) or (max and i > max) then
    return invalid(name, name .. " must be an integer" .. range_text(min, max), "range")
  end
  t[name] = i
end

-- An optional positive number of seconds, at most `max` (default check.MAX_SECONDS).
function check.seconds(t, name, max)
  local v = t[name]
  if v == nil then
    return nil
  end
  max = max or check.MAX_SECONDS
  if type(v) ~= "number" or v ~= v or v <= 0 or v > max then
    return invalid(name, name .. " must be a positive number of seconds up to " .. max)
  end
end

-- An optional function field of t.
function check.func(t, name)
  if t[name] ~= nil and type(t[name]) ~= "function" then
    return invalid(name, name .. " must be a function")
  end
end

-- An optional field that must be one of `values` (a list).
function check.one_of(t, name, values)
  local v = t[name]
  if v == nil then
    return nil
  end
  for _, ok in ipairs(values) do
    if v == ok then return nil end
  end
  local shown = {}
  for i, ok in ipairs(values) do
    shown[i] = string.format("%q", ok)
  end
  return invalid(name, name .. " must be one of " .. table.concat(shown, ", "), "range")
end

-- True when t is a sequence: keys exactly 1..n (an empty table counts).
function check.is_sequence(t)
  if type(t) ~= "table" then
    return false
  end
  local n = 0
  for k in next, t do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
      return false
    end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

-- An endpoint URL: http or https, a host (a name, an IPv4 address or a bracketed IPv6 address), an optional
-- port from 1 to 65535, and nothing else (no user info, path, query or fragment; one trailing "/" is allowed).
-- Returns { scheme, host, port, url } or nil, err naming `name`.
function check.endpoint(v, name)
  local err = check.string(v, name)
  if err then
    return nil, err
  end
  local function bad(why)
    return nil, invalid(name, name .. " must be http(s)://host[:port] (" .. why .. ")")
  end
  local scheme, rest = v:match("^(%a+)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return bad("the scheme is not http or https")
  end
  rest = rest:gsub("/$", "")
  if rest:find("[/?#]") then
    return bad("no path, query or fragment")
  end
  if rest:find("@", 1, true) then
    return bad("no user name or password")
  end
  local host, port = rest:match("^(%[[%x:%.]+%])(.*)$")
  if not host then
    host, port = rest:match("^([%w%.%-]+)(.*)$")
  end
  if not host then
    return bad("the host is missing or has characters a host name cannot have")
  end
  local number
  if port ~= "" then
    number = tonumber(port:match("^:(%d%d?%d?%d?%d?)$"))
    if not number or number < 1 or number > 65535 then
      return bad("the port must be a number from 1 to 65535")
    end
  end
  number = number or (scheme == "https" and 443 or 80)
  return { scheme = scheme, host = host:lower(), port = number, url = scheme .. "://" .. rest }
end

-- ----------------------------------------------------------------------------
-- An action's parameters.

-- String parameter values that passed check.string: a program that sends the same IDs again (a factory
-- line polling one batch) pays a table look-up instead of the pattern scan, about a third of what checking
-- a call's parameters cost. Short strings only (Lua interns them, so the look-up hashes nothing), at most
-- GOOD_STRINGS_MAX before it starts over. Parameter values only: credentials never go in.
local good_strings, good_strings_count = {}, 0
local GOOD_STRINGS_MAX = 1024
local SHORT_STRING = 40

local function check_string_param(v, field)
  if good_strings[v] then
    return nil
  end
  local err = check.string(v, field)
  if not err and #v <= SHORT_STRING then
    if good_strings_count >= GOOD_STRINGS_MAX then
      good_strings, good_strings_count = {}, 0
    end
    good_strings[v] = true
    good_strings_count = good_strings_count + 1
  end
  return err
end

local function check_value(p, v, field)
  local ty = p.type
  if ty == "String" then
    return check_string_param(v, field)
  elseif ty == "Integer" then
    local i = check.as_integer(v)
    if i == nil then
      return invalid(field, field .. " must be an integer" .. range_text(p.min, p.max))
    end
    if (p.min and i < p.min) or (p.max and i > p.max) then
      return invalid(field, field .. " must be an integer" .. range_text(p.min, p.max), "range")
    end
    if p.enum then
      local ok = false
      for _, e in ipairs(p.enum) do
        if i == e then ok = true break end
      end
      if not ok then
        local shown = {}
        for k, e in ipairs(p.enum) do shown[k] = tostring(e) end
        return invalid(field, field .. " must be " .. table.concat(shown, " or "), "range")
      end
    end
    return nil, i
  elseif ty == "Boolean" then
    if type(v) ~= "boolean" then
      return invalid(field, field .. " must be true or false")
    end
  elseif ty == "Array" then
    if not check.is_sequence(v) then
      return invalid(field, field .. " must be an array")
    end
    -- A marked copy, so that an empty one goes out as [] rather than {}. The core is required here, not
    -- at the top, so that code checking parameters without sending them does not need the C module.
    local items = require("tencentcloud.iotexplorer.core").array()
    for i = 1, #v do
      local item = v[i]
      if p.items then
        local err, normalised = check_value({ type = p.items }, item, field .. "[" .. i .. "]")
        if err then return err end
        if normalised ~= nil then item = normalised end
      end
      items[i] = item
    end
    return nil, items
  elseif ty == "Object" then
    if type(v) ~= "table" then
      return invalid(field, field .. " must be an object")
    end
  end
end

local function names_of(action)
  local names = action.param_names
  if not names then
    names = {}
    for i, p in ipairs(action.params) do
      names[i] = p.name
    end
    action.param_names = names
  end
  return names
end

local function is_required(p, params)
  if p.required then
    return true
  end
  if p.required_when then
    for other, value in pairs(p.required_when) do
      if params[other] == value then
        return true, other .. " is " .. tostring(value)
      end
    end
  end
  if p.required_unless and params[p.required_unless] == nil then
    return true, p.required_unless .. " is not given"
  end
  return false
end

-- Checks `params` (a table) against the action's table. Returns a checked copy (integers of integer
-- subtype on Lua 5.4), or nil and an error naming the first offending field. The copy is made with `next`,
-- so a caller's __pairs or __index never runs here.
function check.params(action, params)
  if type(params) ~= "table" then
    return nil, invalid("params", "params must be a table")
  end
  local by_name, out = action.param_by_name, {}
  for k, v in next, params do
    if type(k) ~= "string" or not by_name[k] then
      local key = tostring(k)
      return nil, invalid(key, action.name .. " has no parameter '" .. key .. "'"
        .. did_you_mean(key, names_of(action)), "unknown")
    end
    local err, normalised = check_value(by_name[k], v, k)
    if err then
      return nil, err
    end
    if normalised ~= nil then
      v = normalised
    end
    out[k] = v
  end
  for _, p in ipairs(action.params) do
    if out[p.name] == nil then
      local required, why = is_required(p, out)
      if required then
        return nil, invalid(p.name, p.name .. " is required" .. (why and (" when " .. why) or ""), "missing")
      end
    end
  end
  return out
end

return check

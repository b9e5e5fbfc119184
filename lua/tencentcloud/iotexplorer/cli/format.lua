-- tciot's output formats: pretty JSON with sorted keys (the default, deterministic), tables for people, and
-- tab-separated text for scripts (as tccli prints it); and the escaping that keeps whatever the service
-- sent from reaching a terminal as control sequences.

local format = {}

local function is_array(t)
  local n = #t
  if n == 0 then
    -- The decoder cannot tell {} from []: in API responses an empty value is a list.
    return next(t) == nil
  end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
  end
  return count == n
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    return "null"
  end
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
    return string.format("%d", n)
  end
  for digits = 14, 17 do
    local s = string.format("%." .. digits .. "g", n)
    if tonumber(s) == n then
      return s
    end
  end
end

local function encode(v, indent, out)
  local t = type(v)
  if t == "table" then
    local pad = string.rep("    ", indent + 1)
    if next(v) == nil then
      out[#out + 1] = "[]"
    elseif is_array(v) then
      out[#out + 1] = "[\n"
      for i, item in ipairs(v) do
        out[#out + 1] = pad
        encode(item, indent + 1, out)
        out[#out + 1] = i < #v and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("    ", indent) .. "]"
    else
      out[#out + 1] = "{\n"
      local keys = sorted_keys(v)
      for i, k in ipairs(keys) do
        out[#out + 1] = pad .. json_string(tostring(k)) .. ": "
        encode(v[k], indent + 1, out)
        out[#out + 1] = i < #keys and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("    ", indent) .. "}"
    end
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t == "number" then
    out[#out + 1] = json_number(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null"   -- cjson.null and anything without a JSON form
  end
end

-- Pretty JSON, keys sorted, four-space indent, non-ASCII kept as UTF-8.
function format.json(v)
  local out = {}
  encode(v, 0, out)
  return table.concat(out) .. "\n"
end

local function cell(v)
  local t = type(v)
  if t == "string" then
    return (v:gsub("%c", " "))
  elseif t == "number" then
    return json_number(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return (format.json(v):gsub("%s*\n%s*", " "):gsub(" $", ""))
  end
  return "null"
end

-- Display width: UTF-8 continuation bytes take no column.
local function width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end
format.width = width

local function pad(s, w)
  return s .. string.rep(" ", w - width(s))
end

local function render_table(header, rows, out)
  local widths = {}
  for c, h in ipairs(header or rows[1]) do
    widths[c] = header and width(h) or 0
  end
  for _, row in ipairs(rows) do
    for c, v in ipairs(row) do
      widths[c] = math.max(widths[c] or 0, width(v))
    end
  end
  local rule = {}
  for c, w in ipairs(widths) do
    rule[c] = string.rep("-", w + 2)
  end
  rule = "+" .. table.concat(rule, "+") .. "+"
  local function line(row)
    local cells = {}
    for c, w in ipairs(widths) do
      cells[c] = " " .. pad(row[c] or "", w) .. " "
    end
    out[#out + 1] = "|" .. table.concat(cells, "|") .. "|"
  end
  out[#out + 1] = rule
  if header then
    line(header)
    out[#out + 1] = rule
  end
  for _, row in ipairs(rows) do
    line(row)
  end
  out[#out + 1] = rule
end

local function is_list_of_objects(v)
  if type(v) ~= "table" or next(v) == nil or not is_array(v) then
    return false
  end
  for _, item in ipairs(v) do
    if type(item) ~= "table" or is_array(item) then
      return false
    end
  end
  return true
end

-- Splits a response into scalar rows ({ "a.b", value }) and lists of objects ({ name, items, columns }).
local function split(res)
  local scalars, lists = {}, {}
  local function flatten(prefix, t)
    for _, k in ipairs(sorted_keys(t)) do
      local v, name = t[k], prefix .. tostring(k)
      if is_list_of_objects(v) then
        local columns, have = {}, {}
        for _, item in ipairs(v) do
          for key in pairs(item) do
            if not have[key] then
              have[key] = true
              columns[#columns + 1] = tostring(key)
            end
          end
        end
        table.sort(columns)
        lists[#lists + 1] = { name = name, items = v, columns = columns }
      elseif type(v) == "table" and next(v) ~= nil and not is_array(v) then
        flatten(name .. ".", v)
      else
        scalars[#scalars + 1] = { name, v }
      end
    end
  end
  flatten("", res)
  return scalars, lists
end

local function rows_of(list)
  local rows = {}
  for r, item in ipairs(list.items) do
    rows[r] = {}
    for c, k in ipairs(list.columns) do
      rows[r][c] = item[k] == nil and "" or cell(item[k])
    end
  end
  return rows
end

-- Scalars as a two-column table; each list of objects as its own table below, one row per item.
function format.table(res)
  local out = {}
  local scalars, lists = split(res)
  if #scalars > 0 then
    local rows = {}
    for i, s in ipairs(scalars) do
      rows[i] = { s[1], cell(s[2]) }
    end
    render_table(nil, rows, out)
  end
  for _, list in ipairs(lists) do
    out[#out + 1] = string.format("%s (%d)", list.name, #list.items)
    render_table(list.columns, rows_of(list), out)
  end
  return table.concat(out, "\n") .. "\n"
end

-- Tab-separated, as tccli's text output: the scalar values on one line in key order, then one line per
-- item of each list of objects, led by the list's name in capitals, its values in column order.
function format.text(res)
  local out = {}
  local scalars, lists = split(res)
  if #scalars > 0 then
    local values = {}
    for i, s in ipairs(scalars) do
      values[i] = (cell(s[2]):gsub("\t", " "))
    end
    out[#out + 1] = table.concat(values, "\t")
  end
  for _, list in ipairs(lists) do
    local label = list.name:upper()
    for _, row in ipairs(rows_of(list)) do
      for c, v in ipairs(row) do
        row[c] = v:gsub("\t", " ")
      end
      out[#out + 1] = label .. "\t" .. table.concat(row, "\t")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

format.OUTPUTS = { "json", "table", "text" }

function format.render(output, res)
  return (format[output or "json"] or format.json)(res)
end

-- Terminal safety: every control character (C0, DEL, and the C1 range in UTF-8 or as raw bytes) becomes a
-- visible escape, so a message holding ESC [ ... cannot move the cursor, clear the screen or set the title.
local C0_NAMES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function valid_utf8(s)
  return require("tencentcloud.iotexplorer.check").valid_utf8(s)
end

function format.escape(s)
  s = tostring(s)
  s = s:gsub("[%c\127]", function(c)
    return C0_NAMES[c] or string.format("\\x%02x", c:byte())
  end)
  if s:find("[\128-\255]") then
    if valid_utf8(s) then
      s = s:gsub("\194([\128-\159])", function(c)
        return string.format("\\u%04x", c:byte())
      end)
    else
      s = s:gsub("[\128-\255]", function(c)
        return string.format("\\x%02x", c:byte())
      end)
    end
  end
  return s
end

return format

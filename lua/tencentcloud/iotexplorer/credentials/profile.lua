-- The SDKs' profile file: TENCENTCLOUD_CREDENTIALS_FILE, else ~/.tencentcloud/credentials, else
-- /etc/tencentcloud/credentials. INI; the section is the `profile` option, else TENCENTCLOUD_PROFILE, else
-- "default"; keys secret_id, secret_key, token. Read once, when the chain is built.
local record = require("tencentcloud.iotexplorer.credentials.record")

local profile = {}

profile.SYSTEM_FILE = "/etc/tencentcloud/credentials"

-- Minimal INI: [section], key = value, comments starting with # or ;. Values are trimmed (as Python's
-- configparser does, which the official SDK uses), and so are CRs from files edited on Windows.
function profile.parse_ini(text)
  local sections, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local trimmed = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if trimmed ~= "" and not trimmed:find("^[#;]") then
      local name = trimmed:match("^%[%s*(.-)%s*%]$")
      if name then
        current = sections[name] or {}
        sections[name] = current
      elseif current then
        local k, v = trimmed:match("^([^=]-)%s*=%s*(.*)$")
        if k then
          current[k] = v
        end
      end
    end
  end
  return sections
end

local function candidates(ctx)
  if ctx.o.files then
    return ctx.o.files, false
  end
  local override = record.env(ctx.getenv, "TENCENTCLOUD_CREDENTIALS_FILE")
  if override then
    return { override }, true
  end
  local files = {}
  if ctx.home then
    files[#files + 1] = ctx.home .. "/.tencentcloud/credentials"
  end
  files[#files + 1] = profile.SYSTEM_FILE
  return files, false
end

-- Returns the record, or nil, reason, fatal.
local function resolve(ctx)
  local section = ctx.sdk_profile
  local files, overridden = candidates(ctx)
  local why = {}
  for _, path in ipairs(files) do
    local shown = record.display_path(path, ctx.home)
    local text = record.read_file(path)
    if not text then
      if overridden then
        return nil, "TENCENTCLOUD_CREDENTIALS_FILE names " .. shown .. ", which cannot be read", true
      end
      why[#why + 1] = "not found at " .. shown
    else
      local values = profile.parse_ini(text)[section]
      if not values then
        why[#why + 1] = "no section [" .. section .. "] in " .. shown
      else
        local where = "profile file " .. shown .. " [" .. section .. "]"
        if not values.secret_id or not values.secret_key then
          return nil, where .. " needs both secret_id and secret_key", true
        end
        local c, err = record.new(where, values.secret_id, values.secret_key, values.token, nil, where .. ": ")
        if not c then
          return nil, err, true
        end
        return c
      end
    end
  end
  if #why == 0 then
    return nil, "no profile file to read"
  end
  return nil, table.concat(why, "; ")
end

function profile.new(ctx)
  local c, why, fatal = resolve(ctx)
  return { name = "profile file", fetch = function() return c, why, fatal end, found = c ~= nil }
end

return profile

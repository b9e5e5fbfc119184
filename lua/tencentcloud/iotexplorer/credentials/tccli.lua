-- tccli's files: ~/.tccli/<profile>.credential (JSON secretId, secretKey, token; "type": "cvm-role" means the
-- CVM role) and ~/.tccli/<profile>.configure (region, output, language, the iotexplorer endpoint). The profile
-- is the `profile` option, else TCCLI_PROFILE, else "default". A broken file is named, its contents never shown.
local record = require("tencentcloud.iotexplorer.credentials.record")

local tccli = {}

-- The profile tccli would use, or nil, message when it cannot name a file.
function tccli.profile_name(o, getenv)
  local name = o.profile or record.env(getenv, "TCCLI_PROFILE") or "default"
  if not name:find("^[%w._-]+$") or name:find("^%.") then
    return nil, "tccli profile name '" .. name .. "' is not a file name (letters, digits, . _ -)"
  end
  return name
end

-- Reads and decodes one tccli file. Returns the table, or nil, reason, fatal.
local function read_json(path, shown)
  local text = record.read_file(path)
  if not text then
    return nil, "not found at " .. shown
  end
  local doc = require("cjson.safe").decode(text)
  if type(doc) ~= "table" or doc[1] ~= nil then
    return nil, shown .. " is not a JSON object (fix or remove the file)", true
  end
  return doc
end

local function path_of(home, name, ext)
  if not home then
    return nil
  end
  local path = home .. "/.tccli/" .. name .. "." .. ext
  return path, record.display_path(path, home)
end

function tccli.new(ctx)
  local name, nerr = tccli.profile_name(ctx.o, ctx.getenv)
  local path, shown = path_of(ctx.home, name or "", "credential")
  local provider = { name = "tccli" }

  -- The file is read once; only a "cvm-role" file has anything to fetch later.
  local c, why, fatal, role
  if not name then
    why, fatal = nerr, true
  elseif not path then
    why = "no home folder (HOME is not set)"
  else
    local doc
    doc, why, fatal = read_json(path, shown)
    if doc and doc.type == "cvm-role" then
      role = ctx.cvm_role()
    elseif doc then
      local id, key, token = doc.secretId, doc.secretKey, doc.token
      if id == nil or key == nil then
        why, fatal = shown .. " has no secretId and secretKey", true
      else
        c, why = record.new("tccli " .. shown, id, key, token, nil, shown .. ": ")
        fatal = c == nil
      end
    end
  end
  provider.found = c ~= nil or role ~= nil
  provider.dynamic = role ~= nil

  function provider.fetch()
    if not role then
      return c, why, fatal
    end
    local r, rwhy, rfatal = role.fetch(role)
    if not r then
      return nil, shown .. " says cvm-role: " .. tostring(rwhy), rfatal
    end
    r.source = "tccli " .. shown .. " (" .. r.source .. ")"
    return r
  end
  return provider
end

-- tciot's defaults from <profile>.configure: { region, output, language, endpoint } (each may be nil; all are
-- when there is no file), or nil, message for a file that is not what tccli writes. ctx (optional): getenv,
-- home.
function tccli.configure(profile, ctx)
  ctx = ctx or {}
  local getenv = ctx.getenv or os.getenv
  local name, nerr = tccli.profile_name({ profile = profile }, getenv)
  if not name then
    return nil, nerr
  end
  local home = ctx.home or record.env(getenv, "HOME")
  local path, shown = path_of(home, name, "configure")
  if not path then
    return {}
  end
  local doc, why, fatal = read_json(path, shown)
  if not doc then
    if fatal then
      return nil, why
    end
    return {}
  end
  local sys, iot = doc._sys_param, doc.iotexplorer
  local out = {}
  local function take(section, section_name, key, as)
    if section == nil then
      return true
    end
    if type(section) ~= "table" then
      return nil, shown .. ": " .. section_name .. " must be an object"
    end
    local v = section[key]
    if v ~= nil and (type(v) ~= "string" or v:find("%c")) then
      return nil, shown .. ": " .. section_name .. "." .. key .. " must be a string"
    end
    out[as or key] = v ~= "" and v or nil
    return true
  end
  local ok, err = take(sys, "_sys_param", "region")
  if ok then ok, err = take(sys, "_sys_param", "output") end
  if ok then ok, err = take(sys, "_sys_param", "language") end
  if ok then ok, err = take(iot, "iotexplorer", "endpoint") end
  if not ok then
    return nil, err
  end
  out.file = shown
  return out
end

return tccli

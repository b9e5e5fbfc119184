-- For bench/redis_store.lua: one reservation through hiredis inside an nginx thread-pool VM (the alternative
-- to cosockets that the store does not use; measured beside it). Called by ngx.run_worker_thread.
local redis_store = require("tencentcloud.iotexplorer.redis_store")

local M = {}
local stores = {} -- per thread VM: one connection each

function M.reserve(url, key)
  local s = stores[url]
  if not s then
    s = assert(redis_store.new(url))
    stores[url] = s
  end
  return s:reserve(key, 1e-6, 0, math.huge)
end

return M

-- The client's defaults, in one place. The API's own facts (version, regions, the rate limit) are in
-- actions.lua; retry's backoff defaults in retry.lua; waiting and downloading defaults in batch.lua.
return {
  timeout = 10,           -- seconds per attempt of a request
  connect_timeout = 5,    -- seconds to set up a connection (TCP and TLS)
  -- Read when the endpoint option is not given: points the library and tciot at another endpoint (such as
  -- the bundled emulator) without a code change.
  endpoint_variable = "TENCENTCLOUD_IOTEXPLORER_ENDPOINT",
  region_variable = "TENCENTCLOUD_REGION",
}

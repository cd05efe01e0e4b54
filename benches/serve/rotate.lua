-- wrk: each request asks for the next of the asset's 32 segments of 2 MB, under the path prefix in
-- $SEGMENT_PREFIX (`/asset/big/video/` for stowage serve, `/big/video/` for nginx).
local prefix = os.getenv("SEGMENT_PREFIX")
local n = 0

request = function()
  local path = string.format("%sseg-d0-s%d.ts", prefix, n)
  n = (n + 1) % 32
  return wrk.format("GET", path)
end

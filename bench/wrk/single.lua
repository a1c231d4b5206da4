-- Single-item GET /v1/query/{kind}/{value} for bench/bench_http.py, closed loop.
--
--   wrk -s single.lua URL -- TOKEN_FILE PATHS_FILE
--
-- PATHS_FILE holds one request path a line (values canonical, URL-encoded);
-- the requests rotate through them. TOKEN_FILE as in batch.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

function init(args)
   local headers = common.headers(args[1])
   local reqs = {}
   for _, path in ipairs(common.read_lines(args[2])) do
      reqs[#reqs + 1] = wrk.format("GET", path, headers)
   end
   assert(#reqs > 0, "single.lua: no paths")
   -- threads start far apart in the rotation
   request = common.rotate(reqs, (thread_no or 0) * 7919)
end

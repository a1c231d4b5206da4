-- POST /v1/query batches for bench/bench_http.py.
--
--   wrk -s batch.lua URL -- TOKEN_FILE BODY_FILE [BODY_FILE ...]
--
-- Each BODY_FILE is one JSON request body ({"canonical": true, "items": [...]}),
-- written by the bench; the requests rotate through them. TOKEN_FILE holds the
-- API token (HOME/api-token), or "-" for none.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

function init(args)
   local headers = common.headers(args[1], {["Content-Type"] = "application/json"})
   local reqs = {}
   for k = 2, #args do
      reqs[#reqs + 1] = wrk.format("POST", "/v1/query", headers, common.read_file(args[k]))
   end
   assert(#reqs > 0, "batch.lua: no body files")
   request = common.rotate(reqs, thread_no or 0)
end

-- POST /v1/reports for bench/bench_publish.py: every request a new batch of reports.
--
--   wrk -s report.lua URL -- TOKEN_FILE ITEMS_PER_REQUEST
--
-- Each request carries ITEMS_PER_REQUEST device reports whose values no request
-- has carried before (android:<thread><count>, 16 hex digits), so that every item
-- is a new indicator the node canonicalises, tokenises, signs and commits. The
-- body is built per request (about 60 bytes an item). TOKEN_FILE as in batch.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

local headers, per
local sent = 0
local items = {}

function init(args)
   headers = common.headers(args[1], {["Content-Type"] = "application/json"})
   per = assert(tonumber(args[2]), "report.lua: ITEMS_PER_REQUEST")
end

function request()
   local first = sent * per
   sent = sent + 1
   for j = 1, per do
      items[j] = string.format(
         '{"kind":"device","value":"android:%08X%08X","category":"device_risk","ttl_days":300}',
         thread_no or 0, first + j)
   end
   items[per + 1] = nil
   return wrk.format("POST", "/v1/reports", headers,
      '{"items":[' .. table.concat(items, ",", 1, per) .. ']}')
end

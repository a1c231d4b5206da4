-- Single-item GETs (the paths of single.lua), paced to a target rate, every
-- request timed by the script itself: for bench/bench_maintenance.py, which takes
-- the percentiles of any window of one long run (an index rebuild, a catch-up)
-- from these times.
--
--   wrk -t THREADS -c THREADS -s timeline.lua URL -- TOKEN_FILE PATHS_FILE RATE THREADS OUT_PREFIX
--
-- Run it with as many connections as threads: each wrk thread then has one
-- connection, so the response() a thread sees answers the request() it made
-- last, and the script can time each request. Each thread keeps a schedule of
-- send slots THREADS/RATE s apart (the threads' schedules interleaved); delay()
-- makes the connection wait for its next slot, or lets it send at once if the
-- slot has passed (after a slow response), so the schedule is kept as wrk2 keeps
-- it. Each response appends one line to OUT_PREFIX.<thread number>:
--
--   SLOT SENT DONE STATUS PATH MATCH
--
-- the request's send slot, its actual send and the end of its response, in ms
-- of CLOCK_MONOTONIC (the clock of Python's time.monotonic() on Linux); the HTTP
-- status; the line number of the request's path in PATHS_FILE (from 1); and 1 if
-- the body says "match": true, else 0 (so the bench can check every answer).
-- DONE - SENT is the latency wrk itself records; DONE - SLOT also counts the
-- time the request waited for its connection (no coordinated omission). wrk
-- takes delay() in whole ms, so a request may go out up to a millisecond before
-- its slot: read the latency from the slot as DONE minus the earlier of SLOT and
-- SENT. The lines go through a buffered file, flushed when wrk exits: at the end
-- of its -d duration, or early on SIGINT (wrk then still prints its summary and
-- calls done()). Needs LuaJIT's ffi, as wrk is usually built.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_nsec; } riskmesh_tl_timespec;
   int clock_gettime(int clk_id, riskmesh_tl_timespec *tp);
]]
local ts = ffi.new("riskmesh_tl_timespec")
local function now_ms()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local reqs = {}
local i = 0
local interval_ms = nil
local offset_ms = nil
local next_slot = nil
local slot = nil      -- the slot of the request about to be sent
local cur_slot = nil  -- the request in flight: its slot, send time and path
local cur_sent = nil
local cur_i = nil
local out = nil

function init(args)
   local headers = common.headers(args[1])
   for _, path in ipairs(common.read_lines(args[2])) do
      reqs[#reqs + 1] = wrk.format("GET", path, headers)
   end
   assert(#reqs > 0, "timeline.lua: no paths")
   -- threads start far apart in the rotation (as single.lua's)
   i = ((thread_no or 0) * 7919) % #reqs
   local rate = tonumber(args[3])
   local threads = tonumber(args[4])
   interval_ms = 1000 * threads / rate
   offset_ms = 1000 * (thread_no or 0) / rate
   out = assert(io.open(args[5] .. "." .. tostring(thread_no or 0), "w"))
   out:setvbuf("full", 65536)
end

function request()
   i = i + 1
   if i > #reqs then i = 1 end
   cur_sent = now_ms()
   cur_slot = slot or cur_sent
   cur_i = i
   return reqs[i]
end

function delay()
   local t = now_ms()
   if next_slot == nil then
      next_slot = t + offset_ms
   end
   slot = next_slot
   next_slot = next_slot + interval_ms
   local wait = slot - t
   if wait <= 0 then
      return 0
   end
   return wait
end

function response(status, headers, body)
   if cur_sent ~= nil then
      local match = 0
      if body and body:find('"match":%s*true') then match = 1 end
      out:write(string.format("%.3f %.3f %.3f %d %d %d\n",
         cur_slot, cur_sent, now_ms(), status, cur_i, match))
      cur_sent = nil
   end
end

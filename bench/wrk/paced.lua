-- Single-item GETs as single.lua, paced to a target rate with delay().
--
--   wrk -t THREADS -c CONNS -s paced.lua URL -- TOKEN_FILE PATHS_FILE RATE THREADS CONNS
--
-- wrk calls delay() before each request a connection sends (after the
-- connection's previous response); the connection waits that many ms. Each
-- thread keeps a schedule of send slots THREADS/RATE s apart and hands every
-- delay() call the next slot: a connection waits until its slot, or sends at
-- once if the slot has passed (the thread fell behind, and catches up as
-- connections come free). A slot that passes while every connection of the
-- thread waits for a response is sent late, and wrk counts its latency from
-- that late send, not from its slot: the wait for a free connection is not
-- counted (coordinated omission). If the thread never catches up, the achieved
-- rate falls short of RATE, which is why the bench reports it beside the
-- percentiles.
--
-- The clock is CLOCK_MONOTONIC through LuaJIT's ffi. Without ffi, delay() is a
-- fixed think time of CONNS/RATE s on every connection, which undershoots the
-- rate by the response time.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "single.lua")

local single_init = init
local now_ms = nil
local ok, ffi = pcall(require, "ffi")
if ok then
   ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } riskmesh_timespec;
      int clock_gettime(int clk_id, riskmesh_timespec *tp);
   ]]
   local ts = ffi.new("riskmesh_timespec")
   now_ms = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
   end
end

local interval_ms = nil
local next_slot = nil
local think_ms = nil

function init(args)
   single_init(args)
   local rate = tonumber(args[3])
   local threads = tonumber(args[4])
   interval_ms = 1000 * threads / rate
   think_ms = 1000 * tonumber(args[5]) / rate
end

function delay()
   if now_ms == nil then
      return think_ms
   end
   local t = now_ms()
   if next_slot == nil then
      next_slot = t
   end
   local wait = next_slot - t
   next_slot = next_slot + interval_ms
   if wait <= 0 then
      return 0
   end
   return wait
end

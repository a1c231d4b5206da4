-- Shared by the wrk scripts of bench/bench_http.py (loaded with dofile).
--
-- Requests are formatted once per wrk thread, in init(), from files the bench
-- wrote beforehand, then sent in rotation: no Lua work per request beyond
-- picking the next string. Each thread starts at its own offset.
--
-- done() prints one line for the bench to read:
--   WRK_JSON {"requests": ..., "duration_us": ..., "bytes": ..., "errors": {...},
--             "latency_us": {"min", "mean", "max", "p50", "p90", "p99", "p99.9"}}
-- Latency is wrk's: from the moment a request's first byte is written to the
-- end of its response, per request.

local M = {}

function M.read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function M.read_lines(path)
   local lines = {}
   for line in io.lines(path) do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   return lines
end

-- Authorization header from a token file ("-": none).
function M.headers(token_file, extra)
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   if token_file ~= "-" then
      local token = M.read_file(token_file):gsub("%s+$", "")
      h["Authorization"] = "Bearer " .. token
   end
   for k, v in pairs(extra or {}) do h[k] = v end
   return h
end

-- A request() that rotates through the formatted requests in `reqs`.
function M.rotate(reqs, start)
   local i = start % #reqs
   return function()
      i = i + 1
      if i > #reqs then i = 1 end
      return reqs[i]
   end
end

local function errors_json(e)
   return string.format('{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
      e.connect, e.read, e.write, e.status, e.timeout)
end

function M.done(summary, latency, requests)
   local p = {}
   for _, q in ipairs({50, 90, 99, 99.9}) do
      p[#p + 1] = string.format('"p%s": %d', tostring(q), latency:percentile(q))
   end
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": %s, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, %s}}\n',
      summary.requests, summary.duration, summary.bytes, errors_json(summary.errors),
      latency.min, latency.mean, latency.max, table.concat(p, ", ")))
end

-- setup() gives each thread its number (for its starting offset).
local threads = 0
function M.setup(thread)
   thread:set("thread_no", threads)
   threads = threads + 1
end

return M

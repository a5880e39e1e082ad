-- wrk: miss-heavy traffic.  Every request starts with a number never sent
-- before (per-thread random base + counter), so each one runs the full
-- forward and writes the store.
--   ERSERVE_TASK=cls ERSERVE_WORDS=120 wrk -t2 -c16 -d30s --latency \
--     -s deploy/loadtest/miss_heavy.lua http://127.0.0.1:8080
package.path = "deploy/loadtest/?.lua;" .. package.path
local c = require("common")
-- `base` is a global: thread:set() writes the thread's globals, which a
-- local of the same name would shadow (every thread would then start at 0
-- and send the other threads' texts).
base = 0
local n = 0
setup = function(thread) c.set_base(thread) end
request = function()
  n = n + 1
  return c.request(c.text(tostring(base + n)))
end

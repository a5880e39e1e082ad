-- wrk: hit-heavy traffic.  Four fixed texts, so after the first round every
-- request is served from the store (upper layers and head only).
--   ERSERVE_TASK=cls ERSERVE_WORDS=120 wrk -t2 -c16 -d30s --latency \
--     -s deploy/loadtest/hit_heavy.lua http://127.0.0.1:8080
package.path = "deploy/loadtest/?.lua;" .. package.path
local c = require("common")
local i = 0
request = function()
  i = i + 1
  return c.request(c.text(tostring(100000000000 + (i % 4))))
end

-- wrk: mixed traffic for the chaos soak (tests/chaos/soak.sh).
-- Per 10 requests: 5 hits (16 fixed texts, stored after their first round),
-- 3 misses (a number never sent before), 2 bad requests cycling through
-- 400 (not JSON), 404 (unknown task), 405 (GET on predict), 415 (no JSON
-- Content-Type) and 422 (empty inputs).  Each request carries its expected
-- status in X-Request-Id ("h200-N", "b404-N", ...), which erserve echoes, so
-- response() can tell an expected status from an error whatever the order of
-- the replies.  done() prints one line:
--   chaos: requests=N unexpected=U hit=H/HN miss=M bad=B first_unexpected=...
-- Env: ERSERVE_TASK (default cls), ERSERVE_WORDS (default 16).
package.path = "deploy/loadtest/?.lua;" .. package.path
local c = require("common")

local threads = {}
base = 0 -- thread globals (thread:set / thread:get)
n, requests, unexpected, hits, hit_sent, misses, bad = 0, 0, 0, 0, 0, 0, 0
first_unexpected = ""

setup = function(thread)
  c.set_base(thread)
  table.insert(threads, thread)
end

local path = "/v1/tasks/" .. c.task .. "/predict"
local json = {["Content-Type"] = "application/json"}

local function with_id(h, id)
  local t = {["X-Request-Id"] = id}
  for k, v in pairs(h) do t[k] = v end
  return t
end

local bad_kinds = {
  function(id) return wrk.format("POST", path, with_id(json, "b400-" .. id), '{"inputs": [') end,
  function(id) return wrk.format("POST", "/v1/tasks/no-such-task/predict", with_id(json, "b404-" .. id),
                                 '{"inputs":"x"}') end,
  function(id) return wrk.format("GET", path, with_id({}, "b405-" .. id), nil) end,
  function(id) return wrk.format("POST", path, with_id({["Content-Type"] = "text/plain"}, "b415-" .. id),
                                 '{"inputs":"x"}') end,
  function(id) return wrk.format("POST", path, with_id(json, "b422-" .. id), '{"inputs":[]}') end,
}

request = function()
  n = n + 1
  local k = n % 10
  local id = tostring(base + n)
  if k < 5 then
    return wrk.format("POST", path, with_id(json, "h200-" .. id),
                      '{"inputs":"' .. c.text(tostring(100000000000 + (n % 16))) .. '"}')
  elseif k < 8 then
    return wrk.format("POST", path, with_id(json, "m200-" .. id),
                      '{"inputs":"' .. c.text(id) .. '"}')
  end
  return bad_kinds[math.floor(n / 10) % #bad_kinds + 1](id)
end

response = function(status, headers, body)
  requests = requests + 1
  local id = headers["X-Request-Id"] or headers["x-request-id"] or ""
  local kind, want = id:match("^(%a)(%d%d%d)%-")
  if kind == nil or tonumber(want) ~= status then
    unexpected = unexpected + 1
    if first_unexpected == "" then
      first_unexpected = string.format("%d id=%s body=%s", status, id, (body or ""):sub(1, 160))
    end
    return
  end
  if kind == "h" then
    hit_sent = hit_sent + 1
    if body and body:find('"cache":"hit"', 1, true) then hits = hits + 1 end
  elseif kind == "m" then
    misses = misses + 1
  else
    bad = bad + 1
  end
end

done = function(summary, latency, reqs)
  local t = {requests = 0, unexpected = 0, hits = 0, hit_sent = 0, misses = 0, bad = 0}
  local first = ""
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
    local f = th:get("first_unexpected")
    if first == "" and f and f ~= "" then first = f end
  end
  io.write(string.format("chaos: requests=%d unexpected=%d hit=%d/%d miss=%d bad=%d first_unexpected=%s\n",
                         t.requests, t.unexpected, t.hits, t.hit_sent, t.misses, t.bad,
                         first == "" and "-" or (first:gsub("\n", " "))))
end

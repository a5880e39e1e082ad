-- wrk: miss-heavy traffic.  Every request carries a text never seen before
-- (a per-thread counter), so each one runs the full forward and writes the
-- store.
--   wrk -t2 -c16 -d30s -s deploy/loadtest/miss_heavy.lua http://127.0.0.1:8080
local task = os.getenv("ERSERVE_TASK") or "cls"
local words = os.getenv("ERSERVE_WORDS") or "8"
local counter = 0
local id = tostring(math.random(1, 1e9))
setup = function(thread)
  thread:set("id", tostring(math.random(1, 1e9)))
end
request = function()
  counter = counter + 1
  local t = {}
  for k = 1, tonumber(words) do t[k] = "w" .. id .. "x" .. counter .. "y" .. k end
  local body = '{"inputs":"' .. table.concat(t, " ") .. '"}'
  return wrk.format("POST", "/v1/tasks/" .. task .. "/predict",
                    {["Content-Type"] = "application/json"}, body)
end

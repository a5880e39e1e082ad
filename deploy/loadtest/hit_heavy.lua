-- wrk: hit-heavy traffic.  A small fixed set of texts, so after the first
-- round every request is served from the store (upper layers only).
--   wrk -t2 -c16 -d30s -s deploy/loadtest/hit_heavy.lua http://127.0.0.1:8080
local texts = {
  "the quick brown fox jumps over the lazy dog",
  "embedding recycling reuses lower layer activations",
  "a short sentence",
  "serving several tasks from one frozen encoder",
}
local task = os.getenv("ERSERVE_TASK") or "cls"
local i = 0
request = function()
  i = i + 1
  local body = '{"inputs":"' .. texts[(i % #texts) + 1] .. '"}'
  return wrk.format("POST", "/v1/tasks/" .. task .. "/predict",
                    {["Content-Type"] = "application/json"}, body)
end

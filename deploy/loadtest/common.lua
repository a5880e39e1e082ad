-- Shared by the wrk scripts: a request body of about ERSERVE_WORDS tokens
-- (default 16) of common one-token English words, for task ERSERVE_TASK
-- (default "cls"; the demo calls it "sentiment").
local M = {}
local vocab = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and",
               "then", "runs", "back", "to", "its", "home", "in", "city", "night"}
M.task = os.getenv("ERSERVE_TASK") or "cls"
M.words = tonumber(os.getenv("ERSERVE_WORDS") or "16")
function M.text(prefix)
  local t = {prefix}
  for k = 1, M.words - 1 do t[#t + 1] = vocab[(k % #vocab) + 1] end
  return table.concat(t, " ")
end
function M.request(text)
  return wrk.format("POST", "/v1/tasks/" .. M.task .. "/predict",
                    {["Content-Type"] = "application/json"}, '{"inputs":"' .. text .. '"}')
end
-- For setup(thread): a random base per thread (the thread's global `base`),
-- so that base + counter never repeats a text.  wrk's Lua starts with the
-- same random state every run: seeded from the clock once, or a second run
-- would resend the first run's texts (store hits).
local seeded = false
function M.set_base(thread)
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  thread:set("base", math.random(1, 1000000) * 1000000)
end
return M

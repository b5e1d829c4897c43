-- Mixed load: every 10th request is /delay?ms=50, the other nine are /.
-- Deterministic (a per-thread counter) so every run sends exactly 10% slow requests.
local counter = 0
local fast = wrk.format("GET", "/")
local slow = wrk.format("GET", "/delay?ms=50")

request = function()
   counter = counter + 1
   if counter % 10 == 0 then
      return slow
   end
   return fast
end

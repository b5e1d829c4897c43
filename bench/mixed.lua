-- Mixed load: every 10th request is /delay?ms=50, the other nine are /.
-- Deterministic (a per-thread counter) so every run sends exactly 10% slow requests.
-- The requests are built in init(), after wrk has set the Host header.
local counter = 0
local fast, slow

function init(args)
   fast = wrk.format("GET", "/")
   slow = wrk.format("GET", "/delay?ms=50")
end

function request()
   counter = counter + 1
   if counter % 10 == 0 then
      return slow
   end
   return fast
end

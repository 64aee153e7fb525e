-- wrk script: POST 50 events of ~4 KB each (~200 KB) as a JSON array. With an http sink that is
-- down, 10,000 such events (the default queue capacity) would take ~42 MiB: limits.memory (default
-- 32MiB) is what bounds evrouted, not the queue.
local events = {}
for i = 1, 50 do
  events[i] = '{"type":"order.created","i":' .. i .. ',"pad":"' .. string.rep("x", 4000) .. '"}'
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "[" .. table.concat(events, ",") .. "]"

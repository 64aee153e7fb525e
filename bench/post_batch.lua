-- wrk script: POST 100 events per request, the post_event.lua event with a running "n", as a JSON
-- array (default) or, with `-- ndjson` after the URL, as NDJSON.
local event = '{"type":"order.created","source":"shop-eu-1","customer":"c-1234567","amount":1999,'
  .. '"currency":"EUR","items":[{"sku":"A-100","qty":2},{"sku":"B-200","qty":1}],"note":"x","n":%d}'

function init(args)
  local ndjson = args[1] == "ndjson"
  local events = {}
  for i = 1, 100 do events[i] = string.format(event, i) end
  wrk.method = "POST"
  if ndjson then
    wrk.headers["Content-Type"] = "application/x-ndjson"
    wrk.body = table.concat(events, "\n") .. "\n"
  else
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = "[" .. table.concat(events, ",") .. "]"
  end
end

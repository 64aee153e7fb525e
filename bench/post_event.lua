-- wrk script: POST one ~210-byte JSON event per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"order.created","source":"shop-eu-1","customer":"c-1234567","amount":1999,'
  .. '"currency":"EUR","items":[{"sku":"A-100","qty":2},{"sku":"B-200","qty":1}],"note":"x"}'

-- One v1 append, the harness's body (benchmarks/scenarios.py V1_BODY), for wrk run by hand:
--   wrk -t2 -c64 -d3s -s benchmarks/lua/append.lua http://127.0.0.1:9400/v1/streams/s/events
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"OrderPlaced","data":{"order_id":"ord-2026-000123","customer_id":"cus-4711","currency":"EUR","total_cents":12999,"lines":[{"sku":"SKU-1001","qty":2},{"sku":"SKU-2002","qty":1}],"channel":"web"}}'

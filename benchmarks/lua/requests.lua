-- What wrk sends, read from the spec file named by $EVENTOR_BENCH_SPEC (written by
-- benchmarks/wrk.py), one directive a line:
--   method POST
--   header Content-Type: application/json
--   body /path/to/body/file
--   path /v1/streams/orders/events      (one or more)
-- One path: a static request, built once (no Lua runs per request). Several paths: each request
-- picks one at random (e.g. one of 100 streams, or one page of a stream).
-- done() prints one line "EVENTOR_BENCH {json}" that the harness parses.

local paths = {}
local spec = os.getenv("EVENTOR_BENCH_SPEC")
assert(spec, "EVENTOR_BENCH_SPEC is not set")
for line in io.lines(spec) do
  local key, value = line:match("^(%S+) (.*)$")
  if key == "method" then
    wrk.method = value
  elseif key == "header" then
    local name, field = value:match("^([^:]+): (.*)$")
    wrk.headers[name] = field
  elseif key == "body" then
    local file = assert(io.open(value, "rb"))
    wrk.body = file:read("*a")
    file:close()
  elseif key == "path" then
    paths[#paths + 1] = value
  end
end
assert(#paths > 0, "the spec names no path")

if #paths == 1 then
  wrk.path = paths[1]
else
  local threads = 0
  local requests = {}

  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
  end

  function init(args)
    math.randomseed(os.time() * 1000 + thread_number)
    for i, path in ipairs(paths) do
      requests[i] = wrk.format(nil, path)
    end
  end

  function request()
    return requests[math.random(#requests)]
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'EVENTOR_BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect,
    errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end

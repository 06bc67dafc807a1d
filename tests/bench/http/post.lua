-- wrk script for tests/bench/http: BODY (env) is POSTed as JSON, or with BODY empty the request is a
-- GET; PACE_MS (env) makes each connection wait that many ms between requests, to hold a moderate
-- rate instead of saturating; TRACK_ROWS (env) makes each request {"track_id": TRACK_PREFIX and a
-- random row number of 8 digits, "k": 10} (recommend_scale.py's catalog). done() prints one
-- RESULT line of JSON for the driver.
local body = os.getenv("BODY") or ""
if body ~= "" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
end
local rows = tonumber(os.getenv("TRACK_ROWS") or "0")
if rows > 0 then
  local prefix = os.getenv("TRACK_PREFIX") or ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  math.randomseed(42)
  function request()
    return wrk.format(nil, nil, nil, string.format('{"track_id": "%s%08d", "k": 10}', prefix, math.random(0, rows - 1)))
  end
end
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then -- defined only when pacing: wrk calls into Lua for every request when it is
  function delay()
    return pace
  end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT {\"requests\": %d, \"seconds\": %.3f, \"rps\": %.1f, \"p50_us\": %d, " ..
                         "\"p99_us\": %d, \"errors\": %d, \"non2xx\": %d}\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end

-- wrk script for tests/bench/http: BODY (env) is POSTed as JSON, or with BODY empty the request is a
-- GET; PACE_MS (env) makes each connection wait that many ms between requests, to hold a moderate
-- rate instead of saturating. done() prints one RESULT line of JSON for the driver.
local body = os.getenv("BODY") or ""
if body ~= "" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
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

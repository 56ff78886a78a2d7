-- wrk script for the refresh-token grant: every request spends a refresh token and
-- the answer's new one is spent next (tokens rotate: one sent twice would revoke its
-- family). Each thread takes its share of the tokens in $WRK_TOKENS (one per line;
-- more than one per connection: wrk calls request() once more than it sends, to look
-- at the request, and that token is lost) and posts them with $WRK_AUTH as the Authorization
-- header. Prints STATUS, RPS, P50, P99 and ERRORS lines as stats.lua does; a token
-- lost to an error answer is not replaced, so failures show as missing tokens.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  pool = {}
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("WRK_TOKENS")) do
    if i % nthreads == tid - 1 then table.insert(pool, line) end
    i = i + 1
  end
  auth = os.getenv("WRK_AUTH")
end

function request()
  local token = table.remove(pool) or "none"
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local fresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if fresh then table.insert(pool, fresh) end
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %d %d\n", code, count))
  end
  io.write(string.format("RPS %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("P50 %.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("P99 %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("ERRORS %d\n", summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end

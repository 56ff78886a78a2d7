-- wrk script: prints machine-readable lines (RPS, P50 and P99 in ms, ERRORS) and, with
-- WRK_COUNT=1, a STATUS line per response code. Counting hands every response (body
-- included) to Lua, which costs wrk more CPU for bigger pages, so the timed runs do
-- not count. Optional request bodies come from environment variables:
--   WRK_METHOD=POST WRK_BODY='...' WRK_COOKIE='...'      a fixed form post
--   WRK_REGISTER=1 WRK_CSRF=token WRK_COOKIE='...'       unique registrations
--   WRK_HEADER='Name: value'                              one more request header
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  n = 0
  wrk.method = os.getenv("WRK_METHOD") or "GET"
  local cookie = os.getenv("WRK_COOKIE")
  if cookie then wrk.headers["Cookie"] = cookie end
  local header = os.getenv("WRK_HEADER") -- "Name: value"
  if header then
    local name, value = header:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
  local body = os.getenv("WRK_BODY")
  if body then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  register = os.getenv("WRK_REGISTER")
  csrf = os.getenv("WRK_CSRF")
  -- Names must be new in every wrk run: add the start time (hex seconds).
  run = string.format("%s%x", os.getenv("WRK_RUN") or "r", os.time())
end

function request()
  if register then
    n = n + 1
    local name = string.format("%s%d_%d", run, tid, n)
    local body = "username=" .. name .. "&password=bench+password+" .. name ..
      "&confirm=bench+password+" .. name .. "&csrf=" .. csrf
    return wrk.format("POST", "/register/",
      { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = wrk.headers["Cookie"] },
      body)
  end
  return wrk.format()
end

if os.getenv("WRK_COUNT") then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
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

-- wrk script for the refresh-token grant: every request spends a refresh token and
-- the answer's new one is spent next (tokens rotate: one sent twice would revoke its
-- family). Each thread takes its share of the tokens in $WRK_TOKENS (one per line;
-- more than one per connection: wrk calls request() once more than it sends, to look
-- at the request, and that token is lost) and posts them with $WRK_AUTH as the Authorization
-- header. A token lost to an error answer is not replaced, so failures show as
-- missing tokens.
-- setup() and done() (STATUS, RPS, P50, P99, ERRORS) are stats.lua's.
dofile("bench/stats.lua")

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

-- bench/app.py's wrk script (see README.md): one JSON line at the end, latency as 1,000
-- permilles (wrk 4.1 gives no raw histogram). Argument: a token; when not empty, every
-- request gets a unique Accept header (the page cache keys on it), so every request misses.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  token = args[1] or ""
  n, hits, not200, body_bytes = 0, 0, 0, 0
  plain, accept = wrk.format(), wrk.headers["Accept"]
end

function request()
  if token == "" then
    return plain
  end
  n = n + 1
  wrk.headers["Accept"] = accept .. ",x-bench/" .. token .. "-" .. n
  return wrk.format()
end

function response(status, headers, body)
  body_bytes = body_bytes + #body
  not200 = not200 + (status ~= 200 and 1 or 0)
  hits = hits + (headers["X-Cache"] == "hit" and 1 or 0)
end

function done(summary, latency, requests)
  local sums = {hits = 0, not200 = 0, body_bytes = 0}
  for _, t in ipairs(threads) do
    for name in pairs(sums) do
      sums[name] = sums[name] + t:get(name)
    end
  end
  local permilles = {}
  for i = 1, summary.requests > 0 and 1000 or 0 do
    permilles[i] = string.format("%d", latency:percentile(i / 10))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%f,"not_200":%d,"hits":%d,"body":%d,"socket_errors":' ..
    '{"connect":%d,"read":%d,"write":%d,"timeout":%d},"permilles":[%s]}\n',
    summary.requests, summary.duration / 1e6, sums.not200, sums.hits, sums.body_bytes,
    e.connect, e.read, e.write, e.timeout, table.concat(permilles, ",")))
end

-- wrk script of bench/app.py: counts non-200 answers and page-cache hits per thread and
-- prints one JSON line at the end, with the latency distribution as its 1,000 permilles
-- (microseconds; wrk 4.1 gives no access to the raw histogram), which runs can pool.
-- Body bytes are counted apart from wrk's total, which includes the headers.
-- Argument: a token; when not empty, every request gets a unique Accept header (the page
-- cache keys on Accept and ignores unknown query parameters), so every request misses it.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
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
  wrk.headers["Accept"] = accept .. ",x-bench/" .. token .. "-" .. id .. "-" .. n
  return wrk.format()
end

function response(status, headers, body)
  body_bytes = body_bytes + #body
  if status ~= 200 then
    not200 = not200 + 1
  end
  if headers["X-Cache"] == "hit" then
    hits = hits + 1
  end
end

function done(summary, latency, requests)
  local h, bad, body = 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits")
    bad = bad + t:get("not200")
    body = body + t:get("body_bytes")
  end
  local permilles = {}
  if summary.requests > 0 then
    for i = 1, 1000 do
      permilles[i] = string.format("%d", latency:percentile(i / 10))
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"not200":%d,"hits":%d,"body":%d,"permilles":[%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, bad, h, body, table.concat(permilles, ",")))
end

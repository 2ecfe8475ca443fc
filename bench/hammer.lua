-- wrk script: one buyer hammering reserve and cancel as fast as it can (the abuse scenario).
--   wrk -t2 -c16 -d12s -s bench/hammer.lua URL -- TOKEN DROP_ID
-- Every request carries the same token. Each thread alternates POST /api/reserve/DROP_ID
-- with POST /api/reservations/<id>/cancel of the last hold it was given (reserve only,
-- until it has one). done() prints one line: "WRK_JSON {...}" with the statuses.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local token, drop, hold, turn = nil, nil, nil, 0
-- Globals, read by done() through thread:get().
counts = { s2xx = 0, s409 = 0, s429 = 0, other_4xx = 0, s5xx = 0, other = 0 }

function init(args)
  token, drop = args[1], args[2]
end

function request()
  turn = turn + 1
  local path = "/api/reserve/" .. drop
  if hold and turn % 2 == 0 then
    path = "/api/reservations/" .. hold .. "/cancel"
  end
  return wrk.format("POST", path, {
    ["Authorization"] = "Token " .. token,
    ["Content-Length"] = "0",
  })
end

function response(status, headers, body)
  if status == 201 and body then
    -- The reserve answer: {"message": ..., "reservation": {"id": N, ...}}
    hold = body:match('"reservation"%s*:%s*{%s*"id"%s*:%s*(%d+)') or hold
  end
  if status >= 200 and status < 300 then counts.s2xx = counts.s2xx + 1
  elseif status == 409 then counts.s409 = counts.s409 + 1
  elseif status == 429 then counts.s429 = counts.s429 + 1
  elseif status >= 400 and status < 500 then counts.other_4xx = counts.other_4xx + 1
  elseif status >= 500 then counts.s5xx = counts.s5xx + 1
  else counts.other = counts.other + 1 end
end

function done(summary, latency, requests)
  local total = { s2xx = 0, s409 = 0, s429 = 0, other_4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("counts")) do total[key] = total[key] + value end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_s": %.3f,'
      .. ' "statuses": {"2xx": %d, "409": %d, "429": %d, "other_4xx": %d, "5xx": %d,'
      .. ' "other": %d},'
      .. ' "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d},'
      .. ' "latency_ms": {"p50": %.3f, "p99": %.3f}}\n',
    summary.requests, summary.duration / 1e6, total.s2xx, total.s409, total.s429,
    total.other_4xx, total.s5xx, total.other, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

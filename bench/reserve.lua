-- wrk script: every request reserves the hot drop as the next buyer in tokens.txt.
--   wrk -t2 -c64 -d10s -s bench/reserve.lua http://127.0.0.1:8000 -- var/bench
local dir, tokens, drop_id, counter = nil, {}, nil, 0
local threads, thread_count = {}, 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  threads[#threads + 1] = thread
end

function init(args)
  dir = args[1] or "var/bench"
  for line in io.lines(dir .. "/tokens.txt") do tokens[#tokens + 1] = line end
  drop_id = io.open(dir .. "/drop_id"):read("*l")
  -- Each wrk thread takes its own slice of buyers, so no buyer reserves twice.
  counter = (thread_index - 1) * math.floor(#tokens / 8)
end

function request()
  counter = counter % #tokens + 1
  return wrk.format("POST", "/api/reserve/" .. drop_id,
    {["Authorization"] = "Token " .. tokens[counter], ["Content-Length"] = "0"})
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.1f ms  p99 %.1f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end

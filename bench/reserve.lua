-- wrk script: POST a path (the reserve endpoint) as a new buyer on every request.
--   wrk -t2 -c64 -d10s -s bench/reserve.lua URL -- TOKENS PATH THREADS DONE_DIR [SIZES...]
-- TOKENS holds one API token per line. Thread i of THREADS takes the i-th slice and
-- uses each token once. Once every answer to its slice is in, it creates
-- DONE_DIR/thread-<i>, so the caller can stop wrk early (wrk itself only stops after
-- -d). done() prints one line: "WRK_JSON {...}".
--
-- SIZES, when given, are "LABEL=WEIGHT" arguments (e.g. "US 9.5=14"): each request then
-- carries the JSON body {"size": "LABEL"}, the label drawn at random with probability
-- WEIGHT / sum of weights. Without them the request has no body (a one-size drop).
--
-- A thread whose slice is used up keeps its connections busy with an idle request
-- that gunicorn refuses in its parser (400, no Django) until wrk is stopped: wrk
-- reconnects after every answer, and an idle open connection would hold a gunicorn
-- sync worker until its timeout, stalling the buyers still waiting. Those answers are
-- counted as "idle", not as buyers' answers, and not in rps.
local threads, setup_count = {}, 0

function setup(thread)
  setup_count = setup_count + 1
  thread:set("index", setup_count - 1)
  threads[#threads + 1] = thread
end

local IDLE_MARK = "bench-suite-idle"
local tokens, path, done_dir, host = {}, "/", nil, nil
local sizes, weight_sum = {}, 0 -- { label, body, upto (cumulative weight) } in order
local verifying = false
-- Globals, read by done() through thread:get().
issued, answered, idle_sent, idle_answered, exhausted = 0, 0, 0, 0, false
counts = { s201 = 0, other_2xx = 0, s409 = 0, other_4xx = 0, s5xx = 0, other = 0 }

function init(args)
  local all = {}
  for line in io.lines(args[1]) do
    if #line > 0 then all[#all + 1] = line end
  end
  path, done_dir = args[2], args[4]
  local count = tonumber(args[3])
  for i = math.floor(index * #all / count) + 1, math.floor((index + 1) * #all / count) do
    tokens[#tokens + 1] = all[i]
  end
  for i = 5, #args do
    local label, weight = args[i]:match("^(.*)=(%d+)$")
    if not label then error("a size must be LABEL=WEIGHT, got: " .. args[i]) end
    weight_sum = weight_sum + tonumber(weight)
    local quoted = label:gsub('[\\"]', "\\%0")
    sizes[#sizes + 1] = { body = '{"size": "' .. quoted .. '"}', upto = weight_sum }
  end
  math.randomseed(index + 1) -- each thread its own sequence, the same in every run
  host = wrk.headers["Host"] or wrk.host
  -- wrk calls request() of the first thread once before it starts, to inspect it.
  verifying = index == 0
end

local function size_body()
  local draw = math.random(weight_sum)
  for _, size in ipairs(sizes) do
    if draw <= size.upto then return size.body end
  end
end

local function idle_request()
  return "GET / HTTP/1.1\r\nHost: " .. host .. "\r\n" .. IDLE_MARK .. "\r\n\r\n"
end

function request()
  if verifying then -- must parse as HTTP; never sent
    verifying = false
    return wrk.format("POST", path)
  end
  if issued >= #tokens then
    exhausted = true
    idle_sent = idle_sent + 1
    return idle_request()
  end
  issued = issued + 1
  if #sizes > 0 then -- wrk.format sets Content-Length from the body
    return wrk.format("POST", path, {
      ["Authorization"] = "Token " .. tokens[issued],
      ["Content-Type"] = "application/json",
    }, size_body())
  end
  return wrk.format("POST", path, {
    ["Authorization"] = "Token " .. tokens[issued],
    ["Content-Length"] = "0",
  })
end

function response(status, headers, body)
  if status == 400 and body and body:find(IDLE_MARK, 1, true) then
    idle_answered = idle_answered + 1
    return
  end
  answered = answered + 1
  if status == 201 then counts.s201 = counts.s201 + 1
  elseif status == 409 then counts.s409 = counts.s409 + 1
  elseif status >= 200 and status < 300 then counts.other_2xx = counts.other_2xx + 1
  elseif status >= 400 and status < 500 then counts.other_4xx = counts.other_4xx + 1
  elseif status >= 500 then counts.s5xx = counts.s5xx + 1
  else counts.other = counts.other + 1 end
  if answered == #tokens then
    local file = io.open(done_dir .. "/thread-" .. index, "w")
    if file then file:close() end
  end
end

local function json_number(value)
  if value ~= value or value == math.huge then return "null" end
  return string.format("%.3f", value)
end

function done(summary, latency, requests)
  local total = { s201 = 0, other_2xx = 0, s409 = 0, other_4xx = 0, s5xx = 0, other = 0 }
  local sent, got, idle, idle_got, used_up = 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("counts")) do total[key] = total[key] + value end
    sent = sent + thread:get("issued")
    got = got + thread:get("answered")
    idle = idle + thread:get("idle_sent")
    idle_got = idle_got + thread:get("idle_answered")
    if thread:get("exhausted") then used_up = used_up + 1 end
  end
  local e = summary.errors
  local ms = function(p) return json_number(latency:percentile(p) / 1000) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_s": %s, "issued": %d, "answered": %d,'
      .. ' "idle_sent": %d, "idle_answered": %d, "threads_exhausted": %d,'
      .. ' "statuses": {"201": %d, "other_2xx": %d, "409": %d, "other_4xx": %d,'
      .. ' "5xx": %d, "other": %d},'
      .. ' "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d},'
      .. ' "latency_ms": {"p50": %s, "p90": %s, "p99": %s, "p99.9": %s, "max": %s,'
      .. ' "mean": %s}}\n',
    summary.requests, json_number(summary.duration / 1e6), sent, got, idle, idle_got,
    used_up, total.s201, total.other_2xx, total.s409, total.other_4xx, total.s5xx,
    total.other, e.connect, e.read, e.write, e.timeout,
    ms(50), ms(90), ms(99), ms(99.9), json_number(latency.max / 1000),
    json_number(latency.mean / 1000)))
end

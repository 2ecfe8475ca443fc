-- The deployment-wide throttle: one hash per drop in Redis, changed only by these
-- scripts, so every process sees one order of offers and sends.
--   s:<id>, sv:<id>   each size's newest stock offered (its frame entry) and its
--           version; v  the sum of those versions, the drop's version;  at  when v
--           last grew (ms);  run  the ids of the sizes in the newest offer, in order
--   claim   when a sender last took the drop (ms); sent, sent_at  confirmed sends
-- An offer carries the drop's every size; each size is kept from whichever offer
-- knew it newest (events.newest_stock does the same in a process), so two
-- transactions on different sizes, each knowing only its own size's newest stock,
-- are both heard.
-- A send is due at max(claim + spacing, min(at + quiet, claim + burst)): never closer
-- than spacing to the last; as soon as offers have stopped for `quiet`; and while
-- they go on, once per `burst`. After a lull that is at once (leading edge).
-- _OFFER answers {0} when the offer brought nothing new and the newest went out
-- recently (nothing to do); {1, ms} when the caller should offer again in ms (the
-- newest stock is kept, and every caller helps to send it, so one that dies
-- waiting is covered by the others); or
-- {2, version, frame}: the caller has taken the drop and must send that frame, then
-- _CONFIRM it. Until then waiters do not count it as sent, so a sender dying in
-- between is covered by them. ARGV: payload (JSON), spacing, quiet, burst, memory (ms).
-- The hash outlives a quiet hour: a fresh one would restart v from one offer's
-- sizes, below what watchers hold, until every size has been offered again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local offered = cjson.decode(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'v', 'at', 'claim', 'sent', 'sent_at')
local newest, at = tonumber(s[1]) or 0, tonumber(s[2]) or 0
local claim, sent = tonumber(s[3]) or 0, tonumber(s[4]) or -1
local grew = false
local run = {}
for place, size in ipairs(offered['sizes']) do
  run[place] = tostring(size['id'])
  local id = tostring(size['id'])
  local known = tonumber(redis.call('HGET', KEYS[1], 'sv:' .. id))
  if known == nil or known < size['version'] then
    redis.call('HSET', KEYS[1], 's:' .. id, cjson.encode(size), 'sv:' .. id, size['version'])
    newest = newest + size['version'] - (known or 0)
    grew = true
  end
end
-- The run as the newest offer knows it: its sizes and their order. A size removed
-- from the run (never sold, so its version is 0 and the sum does not move) leaves
-- the frames with the next offer.
redis.call('HSET', KEYS[1], 'run', table.concat(run, ','))
if grew then
  redis.call('HSET', KEYS[1], 'v', newest, 'at', now)
  at = now
elseif newest <= sent and now - tonumber(s[5]) < tonumber(ARGV[5]) then
  return {0}
end
redis.call('PEXPIRE', KEYS[1], 3600000)
local spacing, quiet, burst = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = math.max(claim + spacing, math.min(at + quiet, claim + burst))
if now < due then return {1, due - now} end
redis.call('HSET', KEYS[1], 'claim', now)
local texts, available, total = {}, 0, 0
for i, id in ipairs(run) do
  texts[i] = redis.call('HGET', KEYS[1], 's:' .. id)
  local size = cjson.decode(texts[i])
  available, total = available + size['availableStock'], total + size['totalStock']
end
local frame = '{"type":"stockUpdate","dropId":' .. offered['dropId'] ..
  ',"availableStock":' .. available .. ',"totalStock":' .. total ..
  ',"version":' .. newest .. ',"sizes":[' .. table.concat(texts, ',') .. ']}'
return {2, newest, frame}

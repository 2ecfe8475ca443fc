-- Marks ARGV[1] as sent (see stock_offer.lua), unless a newer version already was.
local t = redis.call('TIME')
if tonumber(ARGV[1]) >= (tonumber(redis.call('HGET', KEYS[1], 'sent')) or -1) then
  redis.call('HSET', KEYS[1], 'sent', ARGV[1], 'sent_at',
             tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

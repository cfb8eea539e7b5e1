-- Conditional removal of entries from one cart-timer index (a sorted set: key id -> due ms).
-- KEYS: 1 the index. ARGV: pairs of (member, due ms as read by the poller).
-- Removes a member only while its score is still the due time read: an entry re-indexed
-- meanwhile (a new timer, written by this or another worker) stays. Returns the number removed.
if #ARGV % 2 ~= 0 then
  return redis.error_reply('nbo cart drop: bad arguments')
end
for j = 2, #ARGV, 2 do
  if not tonumber(ARGV[j]) then return redis.error_reply('nbo cart drop: bad due time') end
end
local removed = 0
for j = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[j])
  if score and tonumber(score) == tonumber(ARGV[j + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[j])
  end
end
return removed

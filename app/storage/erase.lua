-- Atomic erasure of one user (every key shares the user's hash tag, so one slot).
-- KEYS: the user's keys (profile, offers, seen, purchased, policy, decisions, consent, sent),
--       then, last, the erasure marker (string: epoch ms of the user's latest erasure).
-- ARGV: 1 the erasure time (epoch ms), 2 the marker's TTL (seconds).
-- Deletes every key but the last and sets the marker to the later of its stored value and ARGV[1], with the
-- TTL: workers drop the user's events dated at or before it, and a write decided against
-- state read before it fails (commit.lua compares the marker). Returns the number of keys
-- deleted. Every argument is validated before the first write (Lua scripts do not roll back).
local at = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if #KEYS < 2 or not at or at <= 0 or not ttl or ttl <= 0 then
  return redis.error_reply('nbo erase: bad arguments')
end
local marker = KEYS[#KEYS]
local deleted = redis.call('DEL', unpack(KEYS, 1, #KEYS - 1))
local stored = tonumber(redis.call('GET', marker) or '0') or 0
if stored > at then at = stored end
redis.call('SET', marker, string.format('%d', at), 'EX', ttl)
return deleted

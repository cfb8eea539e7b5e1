-- Atomic erasure of one user (every key shares the user's hash tag, so one slot).
-- KEYS: 1-7 the user's keys (profile, offers, seen, purchased, policy, decisions, consent),
--       8 the erasure marker (string: epoch ms of the user's latest erasure).
-- ARGV: 1 the erasure time (epoch ms), 2 the marker's TTL (seconds).
-- Deletes keys 1-7 and sets the marker to the later of its stored value and ARGV[1], with the
-- TTL: workers drop the user's events dated at or before it, and a write decided against
-- state read before it fails (commit.lua compares the marker). Returns the number of keys
-- deleted. Every argument is validated before the first write (Lua scripts do not roll back).
local at = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if not at or at <= 0 or not ttl or ttl <= 0 then
  return redis.error_reply('nbo erase: bad arguments')
end
local deleted = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
local stored = tonumber(redis.call('GET', KEYS[8]) or '0') or 0
if stored > at then at = stored end
redis.call('SET', KEYS[8], string.format('%d', at), 'EX', ttl)
return deleted

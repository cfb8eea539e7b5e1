-- Atomic, compare-and-set write of one user's state (all keys share the user's hash tag).
-- KEYS: 1 profile (hash), 2 offers (string), 3 seen (zset), 4 purchased (zset)
-- ARGV: 1 expected version, 2 ttl seconds, 3 offers JSON ('' keeps the stored one),
--       4 seen cap, 5 purchased cap,
--       6 n profile field/value pairs, then 2n values,
--       then m seen (score, member) pairs, then 2m values,
--       then k purchased (score, member) pairs, then 2k values.
-- Returns {1, new_version} on success; when the version did not match, nothing is written and
-- it returns {0, stored_version, HGETALL profile, GET offers or false, ZRANGE purchased}, the
-- user's state as of this atomic call, so the caller can redo the write without a read.
-- Every argument is validated before the first write (Lua scripts do not roll back).
local expected = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local seen_cap = tonumber(ARGV[4])
local purchased_cap = tonumber(ARGV[5])
if not expected or not ttl or ttl <= 0 or not seen_cap or not purchased_cap then
  return redis.error_reply('nbo commit: bad header arguments')
end

local pos = 6
local function take_pairs()
  local count = tonumber(ARGV[pos])
  if not count or count < 0 or pos + 2 * count > #ARGV then
    return nil
  end
  local values = {}
  for j = 1, 2 * count do
    values[j] = ARGV[pos + j]
  end
  pos = pos + 2 * count + 1
  return values
end

local fields = take_pairs()
local seen = take_pairs()
local purchased = take_pairs()
if not fields or not seen or not purchased or pos ~= #ARGV + 1 then
  return redis.error_reply('nbo commit: bad pair arguments')
end
for j = 1, #seen, 2 do
  if not tonumber(seen[j]) then return redis.error_reply('nbo commit: bad seen score') end
end
for j = 1, #purchased, 2 do
  if not tonumber(purchased[j]) then return redis.error_reply('nbo commit: bad purchased score') end
end

local stored = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if stored ~= expected then
  return {0, stored, redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]),
          redis.call('ZRANGE', KEYS[4], 0, -1)}
end
local version = stored + 1
fields[#fields + 1] = 'ver'
fields[#fields + 1] = tostring(version)
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ttl)

if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl)
else
  redis.call('EXPIRE', KEYS[2], ttl)
end

local function add_capped(key, pairs, cap)
  if #pairs > 0 then
    redis.call('ZADD', key, unpack(pairs))
    redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
  end
  redis.call('EXPIRE', key, ttl)
end
add_capped(KEYS[3], seen, seen_cap)
add_capped(KEYS[4], purchased, purchased_cap)
return {1, version}

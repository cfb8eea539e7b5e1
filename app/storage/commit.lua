-- Atomic, compare-and-set write of one user's state (all keys share the user's hash tag).
-- KEYS: 1 profile (hash), 2 offers (string), 3 seen (zset), 4 purchased (zset),
--       5 policy (string), 6 decisions (list), 7 consent (string, read only),
--       8 sent (list: the messages of the latest sending batch),
--       9 erasure marker (string, read only: epoch ms of the user's latest erasure)
-- ARGV: 1 expected version, 2 ttl seconds, 3 offers JSON ('' keeps the stored one),
--       4 seen cap, 5 purchased cap, 6 policy JSON ('' keeps the stored one),
--       7 decisions cap, 8 recent items returned on a conflict (r),
--       9 the consent the write was decided against: SHA-1 hex of the consent value, '' none,
--       10 the erasure marker the write was decided against (epoch ms, 0 none),
--       then n profile field/value pairs: n, then 2n values (n = 0: no profile fields),
--       then m seen (score, member) pairs: m, then 2m values,
--       then k purchased (score, member) pairs: k, then 2k values,
--       then d decision records: d, then d values (oldest first; pushed to the list's head),
--       then e messages sent: e, then e values (oldest first; e > 0 replaces the sent list).
-- Returns {1, new_version} on success; when the version did not match, or the stored consent is
-- not the one the write was decided against (the consent key has no TTL: it can outlive every
-- other key of the user, whose version then starts again at 0), or the erasure marker is not
-- the one it was decided against (an erase resets the version to 0), nothing is written and
-- it returns {0, stored_version, HGETALL profile, GET offers or false, ZRANGE purchased,
-- GET policy or false, GET consent or false, ZREVRANGE seen 0 r-1 (empty when r = 0),
-- GET marker or false}: the
-- user's state as of this atomic call, so the caller can redo the write without a read.
-- Every argument is validated before the first write (Lua scripts do not roll back).
local expected = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local seen_cap = tonumber(ARGV[4])
local purchased_cap = tonumber(ARGV[5])
local decisions_cap = tonumber(ARGV[7])
local recent_n = tonumber(ARGV[8])
local consent_seen = ARGV[9]
local erased_seen = tonumber(ARGV[10])
if not expected or not ttl or ttl <= 0 or not seen_cap or not purchased_cap
    or not decisions_cap or decisions_cap < 1 or not recent_n or recent_n < 0
    or not consent_seen or not erased_seen then
  return redis.error_reply('nbo commit: bad header arguments')
end

local pos = 11
local function take(width)
  local count = tonumber(ARGV[pos])
  if not count or count < 0 or pos + width * count > #ARGV then
    return nil
  end
  local values = {}
  for j = 1, width * count do
    values[j] = ARGV[pos + j]
  end
  pos = pos + width * count + 1
  return values
end

local fields = take(2)
local seen = take(2)
local purchased = take(2)
local decisions = take(1)
local sent = take(1)
if not fields or not seen or not purchased or not decisions or not sent
    or pos ~= #ARGV + 1 then
  return redis.error_reply('nbo commit: bad pair arguments')
end
for j = 1, #seen, 2 do
  if not tonumber(seen[j]) then return redis.error_reply('nbo commit: bad seen score') end
end
for j = 1, #purchased, 2 do
  if not tonumber(purchased[j]) then return redis.error_reply('nbo commit: bad purchased score') end
end

local stored = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local consent = redis.call('GET', KEYS[7])
local consent_now = ''
if consent then consent_now = redis.sha1hex(consent) end
local marker = redis.call('GET', KEYS[9])
local erased_now = 0
if marker then erased_now = tonumber(marker) or 0 end
if stored ~= expected or consent_now ~= consent_seen or erased_now ~= erased_seen then
  local recent = {}
  if recent_n > 0 then
    recent = redis.call('ZREVRANGE', KEYS[3], 0, recent_n - 1)
  end
  return {0, stored, redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]),
          redis.call('ZRANGE', KEYS[4], 0, -1), redis.call('GET', KEYS[5]),
          consent, recent, marker}
end
local version = stored + 1
fields[#fields + 1] = 'ver'
fields[#fields + 1] = tostring(version)
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ttl)

local function set_or_touch(key, value)
  if value ~= '' then
    redis.call('SET', key, value, 'EX', ttl)
  else
    redis.call('EXPIRE', key, ttl)
  end
end
set_or_touch(KEYS[2], ARGV[3])
set_or_touch(KEYS[5], ARGV[6])

local function add_capped(key, pairs, cap)
  if #pairs > 0 then
    redis.call('ZADD', key, unpack(pairs))
    redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
  end
  redis.call('EXPIRE', key, ttl)
end
add_capped(KEYS[3], seen, seen_cap)
add_capped(KEYS[4], purchased, purchased_cap)

if #decisions > 0 then
  redis.call('LPUSH', KEYS[6], unpack(decisions))
  redis.call('LTRIM', KEYS[6], 0, decisions_cap - 1)
end
redis.call('EXPIRE', KEYS[6], ttl)

if #sent > 0 then
  redis.call('DEL', KEYS[8])
  redis.call('RPUSH', KEYS[8], unpack(sent))
end
redis.call('EXPIRE', KEYS[8], ttl)
return {1, version}

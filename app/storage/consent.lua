-- Atomic application of one user-consent record (all keys share the user's hash tag).
-- KEYS: 1 profile (hash), 2 offers (string), 3 seen (zset), 4 purchased (zset), 5 consent (string),
--       6 erasure marker (string, read only: epoch ms of the user's latest erasure),
--       7 sent (list: the messages of the latest sending batch)
-- ARGV: 1 consent JSON ('' = tombstone: delete the stored consent),
--       2 the record's ts (epoch ms; ignored for a tombstone),
--       3 objection ('1' or '0'), 4 ttl seconds of the profile hash.
-- Returns 0 when the stored consent has a newer ts, 2 when the record is dated at or before the
-- user's erasure (a replay of a record the erasure deleted): nothing written; else 1 after:
--   the consent written (no TTL) or deleted; the profile's `ver` incremented (the event
--   worker's compare-and-set then fails and it reloads the user; it also compares the consent
--   itself, so a tombstone for a user without a profile creates no key: nothing is left of an
--   erased user), the profile given the TTL when it has none; on objection the profile
--   reduced to its `ver` and
--   offers, seen, purchased and sent deleted (the contact-policy state stays: caps still count old
--   contacts).
-- Every argument is validated before the first write (Lua scripts do not roll back).
local json = ARGV[1]
local ts = tonumber(ARGV[2])
local objection = ARGV[3] == '1'
local ttl = tonumber(ARGV[4])
if not ts or not ttl or ttl <= 0 or (ARGV[3] ~= '1' and ARGV[3] ~= '0') then
  return redis.error_reply('nbo consent: bad arguments')
end

if json ~= '' then
  local erased = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
  if erased > 0 and ts <= erased then
    return 2
  end
  local stored = redis.call('GET', KEYS[5])
  if stored then
    local ok, doc = pcall(cjson.decode, stored)
    if ok and type(doc) == 'table' then
      local stored_ts = tonumber(doc['ts'])
      if stored_ts and stored_ts > ts then
        return 0
      end
    end
  end
  redis.call('SET', KEYS[5], json)
else
  redis.call('DEL', KEYS[5])
end

if objection then
  local version = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0') or 0
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
  redis.call('HSET', KEYS[1], 'ver', version + 1)
  redis.call('EXPIRE', KEYS[1], ttl)
elseif json ~= '' or redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  if redis.call('TTL', KEYS[1]) < 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
  end
end
return 1

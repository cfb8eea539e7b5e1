-- Idempotent merge of one batch's offer-feedback deltas into one input partition's stats hash.
-- KEYS: 1 the partition's hash (<prefix>:offer-stats:{<topic>:<partition>})
-- ARGV: 1 ttl seconds, 2 half-life ms, 3 first offset, 4 last offset (of the records summarised),
--       5 the topic's Kafka topic id ('' if unknown),
--       then 5 values per offer: offer id, impressions, clicks, accepts, t (event time, ms).
-- Hash fields: '_offset' = the highest offset written; '_tid' = the topic id it belongs to (a
-- stored offset of another topic id, the topic recreated, counts as none; the counts are
-- kept); 'o:<offer id>' =
-- '<impressions> <clicks> <accepts> <t ms>', decayed counts valued at event time t.
-- Merge, as app.core.exploration.merge: t = max(t_old, t_new),
-- v = v_old * 2^(-(t - t_old)/h) + v_new * 2^(-(t - t_new)/h).
-- Returns {1, last offset}: written, TTL refreshed; {0, stored offset}: duplicate (last <=
-- stored), nothing written; {-1, stored offset}: overlap (first <= stored < last), nothing
-- written: the caller redoes the batch with the records after the stored offset.
-- A stored value that does not parse is replaced by the delta.
-- Every argument is validated before the first write (Lua scripts do not roll back).
local ttl = tonumber(ARGV[1])
local half = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local last = tonumber(ARGV[4])
local topic_id = ARGV[5]
if not ttl or ttl <= 0 or not half or half <= 0 or not first or not last or first < 0
    or first > last or not topic_id or (#ARGV - 5) % 5 ~= 0 then
  return redis.error_reply('nbo offer-stats: bad header arguments')
end

local deltas = {}
for j = 6, #ARGV, 5 do
  local d = {ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3]),
             tonumber(ARGV[j + 4])}
  if not d[2] or not d[3] or not d[4] or not d[5] then
    return redis.error_reply('nbo offer-stats: bad offer counts')
  end
  deltas[#deltas + 1] = d
end

local stored_raw = redis.call('HGET', KEYS[1], '_offset')
local stored_tid = redis.call('HGET', KEYS[1], '_tid')
if topic_id ~= '' and stored_tid and stored_tid ~= topic_id then
  stored_raw = '-1'
end
local stored = tonumber(stored_raw or '-1')
if last <= stored then
  return {0, stored_raw}
end
if first <= stored then
  return {-1, stored_raw}
end

local function fmt(x)
  return string.format('%.17g', x)
end

for _, d in ipairs(deltas) do
  local field = 'o:' .. d[1]
  local imp, clk, acc, t = d[2], d[3], d[4], d[5]
  local old = redis.call('HGET', KEYS[1], field)
  if old then
    local oi, oc, oa, ot = string.match(old, '^(%S+) (%S+) (%S+) (%S+)$')
    oi, oc, oa, ot = tonumber(oi), tonumber(oc), tonumber(oa), tonumber(ot)
    if oi and oc and oa and ot then
      local tt = math.max(ot, t)
      local fo = 2 ^ (-(tt - ot) / half)
      local fn = 2 ^ (-(tt - t) / half)
      imp, clk, acc, t = oi * fo + imp * fn, oc * fo + clk * fn, oa * fo + acc * fn, tt
    end
  end
  redis.call('HSET', KEYS[1], field, fmt(imp) .. ' ' .. fmt(clk) .. ' ' .. fmt(acc) .. ' ' .. fmt(t))
end
redis.call('HSET', KEYS[1], '_offset', ARGV[4])
if topic_id ~= '' then
  redis.call('HSET', KEYS[1], '_tid', topic_id)
end
redis.call('EXPIRE', KEYS[1], ttl)
return {1, ARGV[4]}

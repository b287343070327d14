-- The whole idle tick, and the read half of a busy one, in one round trip.
-- Checks that the lock is still ours and extends it (fencing: a beat that lost the lock gets
-- {0} and must not dispatch), then returns the due entries with their hash fields, and the
-- score of the first entry not returned so the beat can sleep until exactly then.
--
-- KEYS[1] schedule sorted set; KEYS[2] lock key (absent: no lock)
-- ARGV[1] now (score); ARGV[2] limit; ARGV[3] lock token; ARGV[4] lock TTL in ms
-- Returns {1, server_seconds, server_microseconds, next_score|false,
--          key, score, definition, meta, policy, key, score, ...} or {0}
if #KEYS > 1 then
  if redis.call('GET', KEYS[2]) ~= ARGV[3] then
    return {0}
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local clock = redis.call('TIME')
local out = {1, clock[1], clock[2], false}
-- The idle tick reads only the head: one member, whatever the size of the schedule.
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then
  return out
end
if tonumber(head[2]) > now then
  out[4] = head[2]
  return out
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do
  local fields = redis.call('HMGET', due[i], 'definition', 'meta', 'policy')
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = fields[1]
  out[#out + 1] = fields[2]
  out[#out + 1] = fields[3]
end
-- The first member not claimed (due, beyond the limit, or the next one in the future).
local taken = #due / 2
local after = redis.call('ZRANGE', KEYS[1], taken, taken, 'WITHSCORES')
if #after > 0 then
  out[4] = after[2]
end
return out

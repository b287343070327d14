-- Take the beat lock if it is free (or extend it if it is already ours) and hand out a fencing
-- epoch: a number that grows every time any beat takes the lock. SET NX PX on the same key as
-- celery-redbeat's redis-py Lock, so old and new beats exclude each other.
--
-- KEYS[1] lock key; KEYS[2] epoch key; ARGV[1] token; ARGV[2] TTL in ms
-- Returns the epoch (>= 1) when the lock is ours, 0 when another beat holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '1')
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])

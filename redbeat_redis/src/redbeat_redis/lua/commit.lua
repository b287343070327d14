-- The write half of a busy tick, in one round trip, under the same lock check as claim.lua.
-- Entries deleted since the claim stay deleted; quarantined entries leave the schedule and
-- their reason is recorded (their hash is kept so the user can inspect and fix them).
--
-- KEYS[1] schedule sorted set; KEYS[2] quarantine hash; KEYS[3] lock key (absent: no lock)
-- ARGV[1] lock token; ARGV[2] lock TTL in ms; ARGV[3] number of updates;
-- then per update: key, meta ('' = keep), score ('' = leave the schedule);
-- then per quarantined entry: key, reason.
-- Returns 1, or 0 when the lock is no longer ours (nothing is written then).
if #KEYS > 2 then
  if redis.call('GET', KEYS[3]) ~= ARGV[1] then
    return 0
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local key, meta, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if redis.call('EXISTS', key) == 1 then
    if meta ~= '' then
      redis.call('HSET', key, 'meta', meta)
    end
    if score == '' then
      redis.call('ZREM', KEYS[1], key)
    else
      redis.call('ZADD', KEYS[1], score, key)
    end
  else
    redis.call('ZREM', KEYS[1], key)
  end
end
while i <= #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1

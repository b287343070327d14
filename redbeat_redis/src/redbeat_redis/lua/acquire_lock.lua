-- Take the beat lock if it is free (or extend it if it is already ours) and hand out a fencing
-- epoch: a number that grows every time any beat takes the lock. SET NX PX on the same key as
-- celery-redbeat's redis-py Lock, so old and new beats exclude each other.
--
-- A lock or epoch key another program broke is refused with an error naming it, before
-- anything is written (the beat stays a standby and retries). The checks ride on the reads the
-- script makes anyway (redis.pcall).
--
-- Who holds the lease is recorded beside it (KEYS[3], a hash: token, identity, since, epoch;
-- the lock's value stays the bare token celery-redbeat's lock expects), and standbys note
-- themselves in KEYS[4] (a sorted set: identity -> when last seen, ms), for logs and
-- `redbeat lock`. Both ride on this script's round trip.
--
-- KEYS[1] lock key; KEYS[2] epoch key; KEYS[3] holder hash; KEYS[4] standbys sorted set
-- ARGV[1] token; ARGV[2] TTL in ms; ARGV[3] this beat's identity (host:pid)
-- Returns the epoch (>= 1) when the lock is ours; when another beat holds it,
-- {0, identity, since (ms), epoch} of the holder (false where it did not record itself: a
-- celery-redbeat beat, or an older RedBeat).
local function broken(key, found, holds, expected)
  return redis.error_reply('REDBEATKEY ' .. key .. ' holds ' .. found .. ', not ' .. expected ..
    ' (where RedBeat keeps ' .. holds .. '): another program wrote it. Rename or delete it ' ..
    '(DEL ' .. key .. '); this beat waits as a standby and retries')
end
local function failed(reply)
  -- Only a key of the wrong type is "broken"; any other error (an ACL refusal, OOM) is the
  -- server's, passed on as it is.
  if type(reply) == 'table' and reply.err ~= nil then
    if string.sub(reply.err, 1, 9) ~= 'WRONGTYPE' then
      error(reply)
    end
    return true
  end
  return false
end
local holder = redis.pcall('GET', KEYS[1])
if failed(holder) then
  return broken(KEYS[1], 'a ' .. redis.call('TYPE', KEYS[1]).ok, 'the beat lock', 'a string')
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if holder and holder ~= ARGV[1] then
  local now = now_ms()
  redis.call('ZADD', KEYS[4], now, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 600000)
  local who = redis.call('HMGET', KEYS[3], 'token', 'identity', 'since', 'epoch')
  if who[1] ~= holder then
    return {0, false, false, false}
  end
  return {0, who[2], who[3], who[4]}
end
local epoch = redis.pcall('GET', KEYS[2])
if failed(epoch) then
  return broken(KEYS[2], 'a ' .. redis.call('TYPE', KEYS[2]).ok, 'the fencing epoch',
    'an integer')
end
if epoch and not string.match(epoch, '^%d+$') then
  return broken(KEYS[2], "'" .. string.sub(epoch, 1, 40) .. "'", 'the fencing epoch',
    'an integer')
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(epoch or '1')
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local taken = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'identity', ARGV[3], 'since', now_ms(),
  'epoch', taken)
redis.call('ZREM', KEYS[4], ARGV[3])
return taken

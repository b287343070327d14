-- Take the beat lock if it is free (or extend it if it is already ours) and hand out a fencing
-- epoch: a number that grows every time any beat takes the lock. SET NX PX on the same key as
-- celery-redbeat's redis-py Lock, so old and new beats exclude each other.
--
-- A lock or epoch key another program broke is refused with an error naming it, before
-- anything is written (the beat stays a standby and retries). The checks ride on the reads the
-- script makes anyway (redis.pcall).
--
-- KEYS[1] lock key; KEYS[2] epoch key; ARGV[1] token; ARGV[2] TTL in ms
-- Returns the epoch (>= 1) when the lock is ours, 0 when another beat holds it.
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
if holder and holder ~= ARGV[1] then
  return 0
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
return redis.call('INCR', KEYS[2])

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
-- Liveness: a contender subscribes to its own channel <lock key>:alive:<token> before it
-- tries (ARGV[4]); when it takes the lease while the server counts that subscription, the
-- holder record says so ('watched'). The subscription closes with the holder's process, so a
-- standby that may take over early (ARGV[5] = '1') and finds a watched holder's channel with no
-- subscriber takes the lease at once instead of waiting for it to lapse. A frozen process, a
-- lost host or a partition keep the connection open as far as the server knows: the lease
-- bounds those. PUBSUB NUMSUB is sent with pcall: a server or ACL user that refuses it leaves
-- the lease to lapse, and the reply says so.
--
-- KEYS[1] lock key; KEYS[2] epoch key; KEYS[3] holder hash; KEYS[4] standbys sorted set
-- ARGV[1] token; ARGV[2] TTL in ms; ARGV[3] this beat's identity (host:pid); ARGV[4] this
-- beat's liveness channel ('' when it does not watch); ARGV[5] '1' to take over a holder whose
-- liveness channel is empty
-- Returns {epoch, false, false, note} when the lock is ours (epoch >= 1), {epoch, identity,
-- lease left (ms), note} when it is ours after its holder's process died; when another beat
-- holds it,
-- {0, identity, since (ms), epoch, note} of the holder (false where it did not record itself:
-- a celery-redbeat beat, or an older RedBeat; note: the server's error when it refused PUBSUB
-- NUMSUB, else false).
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
-- The number of subscribers of a liveness channel; nil and the server's error when it refuses
-- to count.
local function subscribers(channel)
  local reply = redis.pcall('PUBSUB', 'NUMSUB', channel)
  if type(reply) == 'table' and reply.err ~= nil then
    return nil, reply.err
  end
  return tonumber(reply[2])
end
local orphaned = false
if holder and holder ~= ARGV[1] then
  local now = now_ms()
  redis.call('ZADD', KEYS[4], now, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 600000)
  local who = redis.call('HMGET', KEYS[3], 'token', 'identity', 'since', 'epoch', 'watched')
  if who[1] ~= holder then
    return {0, false, false, false, false}
  end
  -- Only a channel named after the holder's own token counts: a record another program (or an
  -- older RedBeat) left beside a newer lease says nothing about that lease's holder.
  if ARGV[5] ~= '1' or who[5] ~= KEYS[1] .. ':alive:' .. holder then
    return {0, who[2], who[3], who[4], false}
  end
  local count, refused = subscribers(who[5])
  if count == nil then
    return {0, who[2], who[3], who[4], refused}
  end
  if count > 0 then
    return {0, who[2], who[3], who[4], false}
  end
  orphaned = {who[2], redis.call('PTTL', KEYS[1])}
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
  return {tonumber(epoch or '1'), false, false, false}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local taken = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'identity', ARGV[3], 'since', now_ms(),
  'epoch', taken)
local watched, refused = false, false
if ARGV[4] ~= '' then
  watched, refused = subscribers(ARGV[4])
end
if watched and watched > 0 then
  redis.call('HSET', KEYS[3], 'watched', ARGV[4])
else
  redis.call('HDEL', KEYS[3], 'watched')
end
redis.call('ZREM', KEYS[4], ARGV[3])
if orphaned then
  return {taken, orphaned[1], orphaned[2], refused or false}
end
return {taken, false, false, refused or false}

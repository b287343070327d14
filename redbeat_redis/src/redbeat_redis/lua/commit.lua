-- The write half of a busy tick, in one round trip, under the same lock check as claim.lua.
-- Entries deleted since the claim stay deleted; quarantined entries leave the schedule and
-- their reason is recorded (their hash is kept so the user can inspect and fix them).
--
-- All or nothing: every key is checked before anything is written, so data another program
-- broke cannot leave half a commit applied. A shared key of the wrong type refuses the whole
-- commit with an error naming it; an entry key that is no longer a hash is quarantined instead
-- of updated.
--
-- KEYS[1] schedule sorted set; KEYS[2] quarantine hash; KEYS[3] lock key (absent: no lock)
-- ARGV[1] lock token; ARGV[2] lock TTL in ms; ARGV[3] number of updates;
-- ARGV[4] number of quarantined entries; ARGV[5] number of run-now requests done;
-- ARGV[6] the hash of run-now requests
-- then per update: key, meta ('' = keep), score ('' = leave the schedule);
-- then per quarantined entry: key, reason;
-- then per run-now request done: its schedule member, the entry's name.
-- Returns 1, or 0 when the lock is no longer ours (nothing is written then).
local function broken(key, found, holds, expected)
  return redis.error_reply('REDBEATKEY ' .. key .. ' holds a ' .. found .. ', not ' .. expected ..
    ' (where RedBeat keeps ' .. holds .. '): another program wrote it. Rename or delete it ' ..
    '(DEL ' .. key .. '); this beat waits as a standby and retries')
end
local function kind(key)
  return redis.call('TYPE', key).ok
end
if #KEYS > 2 then
  local holder = redis.pcall('GET', KEYS[3])
  if type(holder) == 'table' and holder.err then
    if string.sub(holder.err, 1, 9) ~= 'WRONGTYPE' then
      error(holder)  -- the server's own error (an ACL refusal): passed on as it is
    end
    return broken(KEYS[3], kind(KEYS[3]), 'the beat lock', 'a string')
  end
  if holder ~= ARGV[1] then
    return 0
  end
end
local found = kind(KEYS[1])
if found ~= 'zset' and found ~= 'none' then
  return broken(KEYS[1], found, 'the schedule', 'a sorted set')
end
-- Each entry key's type, checked before anything is written (TYPE costs what EXISTS did).
local FIRST = 7
local n = tonumber(ARGV[3])
local q = tonumber(ARGV[4])
local kinds = {}
local quarantines = q > 0
for u = 1, n do
  kinds[u] = kind(ARGV[FIRST - 3 + 3 * u])
  if kinds[u] ~= 'hash' and kinds[u] ~= 'none' then
    quarantines = true
  end
end
if quarantines then
  found = kind(KEYS[2])
  if found ~= 'hash' and found ~= 'none' then
    return broken(KEYS[2], found, 'the quarantine', 'a hash')
  end
end
-- Everything is known to be writable from here on.
if #KEYS > 2 then
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
local i = FIRST
for u = 1, n do
  local key, meta, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if kinds[u] == 'hash' then
    if meta ~= '' then
      redis.call('HSET', key, 'meta', meta)
    end
    if score == '' then
      redis.call('ZREM', KEYS[1], key)
    else
      redis.call('ZADD', KEYS[1], score, key)
    end
  elseif kinds[u] == 'none' then
    redis.call('ZREM', KEYS[1], key)
  else
    redis.call('ZREM', KEYS[1], key)
    redis.call('HSET', KEYS[2], key, 'its key holds a ' .. kinds[u] .. ', not an entry hash: ' ..
      'another program wrote it; delete the key and save the entry again')
  end
end
for _ = 1, q do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.pcall('HDEL', ARGV[6], ARGV[i + 1])  -- who asked: informative only
  i = i + 2
end
return 1

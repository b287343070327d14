-- Every write outside the tick, in one command: saves, deletes and the set of static names
-- (save, save_many, delete, delete_many, replace_statics, set_statics). One command instead of
-- a MULTI/EXEC of four per entry keeps the start-up sync of 10,000 statics to one short
-- request: redis-py's per-command cost, not the server's, was most of it.
--
-- KEYS[1] schedule sorted set; KEYS[2] quarantine hash; KEYS[3] statics set
-- ARGV[1] '1': keep a stored meta (HSETNX), '0': overwrite it
-- ARGV[2] number of saves; ARGV[3] number of deletes;
-- ARGV[4] '1': replace the statics set with the names after the deletes, '0': leave it alone
-- then per save: key, definition, policy ('' = keep the stored one), meta ('' = none),
--                score ('' = out of the schedule)
-- then per delete: key, the key of its run history (deleted with it)
-- then the static names (when ARGV[4] is '1')
-- Returns 1.
--
-- All or nothing: every key is checked before anything is written, and a key of the wrong type
-- (another program's data) refuses the whole write with an error naming it.
local function broken(key, found, holds, expected)
  return redis.error_reply('REDBEATKEY ' .. key .. ' holds a ' .. found .. ', not ' .. expected ..
    ' (where RedBeat keeps ' .. holds .. '): another program wrote it. Rename or delete it ' ..
    '(DEL ' .. key .. ')')
end
local function kind(key)
  return redis.call('TYPE', key).ok
end
local found = kind(KEYS[1])
if found ~= 'zset' and found ~= 'none' then
  return broken(KEYS[1], found, 'the schedule', 'a sorted set')
end
-- Saving or deleting an entry clears its quarantine record; a quarantine key that is not a
-- hash holds no record of ours, so there is nothing to clear (the tick reports that key when
-- it has something to quarantine).
local quarantine = kind(KEYS[2]) == 'hash'
if ARGV[4] == '1' then
  found = kind(KEYS[3])
  if found ~= 'set' and found ~= 'none' then
    return broken(KEYS[3], found, 'the static entries', 'a set')
  end
end
local keep_meta = ARGV[1] == '1'
local i = 5
for _ = 1, tonumber(ARGV[2]) do
  local found = kind(ARGV[i])
  if found ~= 'hash' and found ~= 'none' then
    return broken(ARGV[i], found, 'an entry', 'an entry hash')
  end
  i = i + 5
end
i = 5
for _ = 1, tonumber(ARGV[2]) do
  local key, definition, policy, meta, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  redis.call('HSET', key, 'definition', definition)
  if policy ~= '' then
    redis.call('HSET', key, 'policy', policy)
  end
  if meta ~= '' then
    redis.call(keep_meta and 'HSETNX' or 'HSET', key, 'meta', meta)
  end
  if score == '' then
    redis.call('ZREM', KEYS[1], key)
  else
    redis.call('ZADD', KEYS[1], score, key)
  end
  if quarantine then
    redis.call('HDEL', KEYS[2], key)
  end
end
for _ = 1, tonumber(ARGV[3]) do
  local key = ARGV[i]
  redis.call('ZREM', KEYS[1], key)
  redis.call('DEL', key, ARGV[i + 1])
  i = i + 2
  if quarantine then
    redis.call('HDEL', KEYS[2], key)
  end
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[3])
  while i <= #ARGV do
    redis.call('SADD', KEYS[3], ARGV[i])
    i = i + 1
  end
end
return 1

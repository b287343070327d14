-- Many entries' hash fields and scores in one command (load, load_many; the start-up sync
-- reads every static's stored run history with it).
--
-- KEYS[1] schedule sorted set
-- ARGV: entry keys
-- Returns {definition, meta, policy, score, ...}: four per key, false where absent.
-- A key of another type than a hash (another program's data) is an error naming it.
local schedule = redis.call('TYPE', KEYS[1]).ok
if schedule ~= 'zset' and schedule ~= 'none' then
  return redis.error_reply('REDBEATKEY ' .. KEYS[1] .. ' holds a ' .. schedule ..
    ', not a sorted set (where RedBeat keeps the schedule): another program wrote it. ' ..
    'Rename or delete it (DEL ' .. KEYS[1] .. ')')
end
local out = {}
local n = 0
for i = 1, #ARGV do
  local found = redis.call('TYPE', ARGV[i]).ok
  if found ~= 'hash' and found ~= 'none' then
    return redis.error_reply('REDBEATKEY ' .. ARGV[i] .. ' holds a ' .. found ..
      ', not an entry hash: another program wrote it. Rename or delete it (DEL ' .. ARGV[i] ..
      ')')
  end
  local fields = redis.call('HMGET', ARGV[i], 'definition', 'meta', 'policy')
  out[n + 1] = fields[1]
  out[n + 2] = fields[2]
  out[n + 3] = fields[3]
  out[n + 4] = redis.call('ZSCORE', KEYS[1], ARGV[i])
  n = n + 4
end
return out

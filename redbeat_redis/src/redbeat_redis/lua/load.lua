-- Many entries' hash fields and scores in one command (load, load_many; the start-up sync
-- reads every static's stored run history with it).
--
-- KEYS[1] schedule sorted set
-- ARGV: entry keys
-- Returns {definition, meta, policy, score, ...}: four per key, false where absent.
local out = {}
local n = 0
for i = 1, #ARGV do
  local fields = redis.call('HMGET', ARGV[i], 'definition', 'meta', 'policy')
  out[n + 1] = fields[1]
  out[n + 2] = fields[2]
  out[n + 3] = fields[3]
  out[n + 4] = redis.call('ZSCORE', KEYS[1], ARGV[i])
  n = n + 4
end
return out

-- The queued and running runs of entries with an overlap policy (redbeat_core.running), each a
-- member of a sorted set scored by when it stops counting (server time), so a lost worker or
-- message stops blocking its entry after its lease. Empty sets vanish; each set expires with
-- its longest-lived member, so an entry deleted meanwhile leaves nothing behind.
--
-- ARGV[1] the operation; KEYS[1] the sorted set of live trackers (workers recording runs).
-- reserve:  ARGV[2] n, then per run: task id, mode (unused: every mode waits for no queued
--           and no running run), seconds queued;
--           KEYS[2i], KEYS[2i+1]: the run's entry's queued and running sets.
--           Returns {0} when no tracker is alive (nothing written), else {1, then per run:
--           allowed (1 or 0), queued, running} (a later run of one entry sees the earlier).
-- started:  KEYS[2] queued, KEYS[3] running; ARGV[2] task id, ARGV[3] lease seconds.
-- finished: KEYS[2] queued, KEYS[3] running; ARGV[2] task id.
-- renew:    ARGV[2] lease seconds; KEYS[i+1] running set, ARGV[i+2] task id, per run.
-- alive:    ARGV[2] tracker, ARGV[3] lease seconds.
-- trackers: the live trackers' names.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op = ARGV[1]

local function add(key, until_, member)
  redis.call('ZADD', key, until_, member)
  local ms = math.ceil((until_ - now) * 1000)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

local function live(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end

if op == 'reserve' then
  if redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') == 0 then
    return {0}
  end
  local out = {1}
  for i = 1, tonumber(ARGV[2]) do
    local queued, running = KEYS[2 * i], KEYS[2 * i + 1]
    local id, ttl = ARGV[3 * i], tonumber(ARGV[3 * i + 2])
    local q, r = live(queued), live(running)
    local allowed = q + r == 0
    if allowed then
      add(queued, now + ttl, id)
    end
    out[#out + 1] = allowed and 1 or 0
    out[#out + 1] = q
    out[#out + 1] = r
  end
  return out
elseif op == 'started' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  add(KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
elseif op == 'finished' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
elseif op == 'renew' then
  local lease = tonumber(ARGV[2])
  for i = 2, #KEYS do
    if redis.call('ZSCORE', KEYS[i], ARGV[i + 1]) then
      add(KEYS[i], now + lease, ARGV[i + 1])
    end
  end
elseif op == 'alive' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  add(KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
elseif op == 'trackers' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
else
  return redis.error_reply('ERR runs.lua: unknown operation ' .. tostring(op))
end
return 1

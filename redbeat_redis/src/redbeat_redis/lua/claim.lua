-- The whole idle tick, and the read half of a busy one, in one round trip.
-- Checks that the lock is still ours and extends it (fencing: a beat that lost the lock gets
-- {0} and must not dispatch), then returns the due entries with their hash fields, and the
-- score of the first entry not returned so the beat can sleep until exactly then.
--
-- Data another program broke must not stop the schedule: a shared key of the wrong type is
-- refused with an error naming it (nothing is written); a due member that cannot be an entry
-- (no key prefix, or a key that is not a hash) is moved to the quarantine here, with the
-- reason, and reported, since no later step could address or read it. The checks ride on the
-- commands the tick sends anyway (redis.pcall): a healthy idle tick is still four commands.
--
-- A run-now request (Schedule.run_now) is a member '<prefix>:run_now:<name>' of the schedule,
-- scored at the time it was asked for, with who asked in the hash '<prefix>:run_now': it is
-- returned with the entry's fields, apart from the due entries, and commit.lua removes it.
--
-- The run history of the beat's last busy tick rides along (redbeat_core.history): written
-- here, once the lock is checked, so the tick's own commit (at-most-once: before its
-- publishes) carries nothing more and the records know how each publish went. Each record is
-- pushed on its entry's list and the schedule's, each trimmed to its cap, with pcall: a history
-- key another program broke, or a refused command, loses records, never the claim; the first
-- such error is returned for the beat to report.
--
-- KEYS[1] schedule sorted set; KEYS[2] quarantine hash; KEYS[3] lock key (absent: no lock)
-- ARGV[1] now (score); ARGV[2] limit; ARGV[3] key prefix; ARGV[4] lock token ('' without a
-- lock); ARGV[5] lock TTL in ms; ARGV[6] number of history records; ARGV[7] records kept per
-- entry; ARGV[8] records kept in all; ARGV[9] the history list's key;
-- then per history record: its entry's history key, the record (JSON).
-- Returns {1, server_seconds, server_microseconds, next_score|false, n_quarantined,
--          n_requests, refused history write ('<key>\n<command>\n<error>') | false,
--          member, reason, ... (n_quarantined pairs),
--          name, requested_at, definition, meta, policy, request, ... (n_requests),
--          key, score, definition, meta, policy, key, score, ...} or {0}
local function broken(key, holds, expected)
  local found = redis.call('TYPE', key).ok
  return redis.error_reply('REDBEATKEY ' .. key .. ' holds a ' .. found .. ', not ' .. expected ..
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
if #KEYS > 2 then
  local holder = redis.pcall('GET', KEYS[3])
  if failed(holder) then
    return broken(KEYS[3], 'the beat lock', 'a string')
  end
  if holder ~= ARGV[4] then
    return {0}
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
-- The first history write refused, for the beat to report.
local refused = false
local function keep(command, key, reply)
  if not refused and type(reply) == 'table' and reply.err then
    refused = key .. '\n' .. command .. '\n' .. reply.err
  end
end
local records = tonumber(ARGV[6])
if records > 0 then
  local per_entry, total, all = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
  local batch = {}
  local i = 10
  for _ = 1, records do
    if per_entry > 0 then
      keep('lpush', ARGV[i], redis.pcall('LPUSH', ARGV[i], ARGV[i + 1]))
      keep('ltrim', ARGV[i], redis.pcall('LTRIM', ARGV[i], 0, per_entry - 1))
    end
    batch[#batch + 1] = ARGV[i + 1]
    if total > 0 and #batch == 500 then  -- one LPUSH per 500 (well within unpack's limit)
      keep('lpush', all, redis.pcall('LPUSH', all, unpack(batch)))
      batch = {}
    end
    i = i + 2
  end
  if total > 0 then
    if #batch > 0 then
      keep('lpush', all, redis.pcall('LPUSH', all, unpack(batch)))
    end
    keep('ltrim', all, redis.pcall('LTRIM', all, 0, total - 1))
  end
end
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local prefix = ARGV[3]
local clock = redis.call('TIME')
local out = {1, clock[1], clock[2], false, 0, 0, refused}
-- The idle tick reads only the head: one member, whatever the size of the schedule.
local head = redis.pcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if failed(head) then
  return broken(KEYS[1], 'the schedule', 'a sorted set')
end
if #head == 0 then
  return out
end
if tonumber(head[2]) > now then
  out[4] = head[2]
  return out
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)
local entries = {}
local moved = {}
local requests = {}
local asked = prefix .. ':run_now:'
for i = 1, #due, 2 do
  local key = due[i]
  local reason = nil
  local fields = nil
  if string.sub(key, 1, #asked) == asked then
    local name = string.sub(key, #asked + 1)
    fields = redis.pcall('HMGET', prefix .. name, 'definition', 'meta', 'policy')
    if failed(fields) then
      fields = {false, false, false}  -- not an entry hash: the request cannot run
    end
    local request = redis.pcall('HGET', prefix .. ':run_now', name)
    if failed(request) then
      request = false  -- who asked is not known; the run still happens
    end
    requests[#requests + 1] = name
    requests[#requests + 1] = due[i + 1]
    requests[#requests + 1] = fields[1]
    requests[#requests + 1] = fields[2]
    requests[#requests + 1] = fields[3]
    requests[#requests + 1] = request
    key = nil
  elseif string.sub(key, 1, #prefix) ~= prefix then
    reason = 'the schedule member ' .. key .. ' does not start with the key prefix ' .. prefix ..
      ': RedBeat cannot address it as an entry; remove it from the schedule'
  else
    fields = redis.pcall('HMGET', key, 'definition', 'meta', 'policy')
    if failed(fields) then
      reason = 'its key holds a ' .. redis.call('TYPE', key).ok .. ', not an entry hash: ' ..
        'another program wrote it; delete the key and save the entry again'
    end
  end
  if key == nil then
    -- a request, kept apart above
  elseif reason then
    moved[#moved + 1] = key
    moved[#moved + 1] = reason
  else
    entries[#entries + 1] = key
    entries[#entries + 1] = due[i + 1]
    entries[#entries + 1] = fields[1]
    entries[#entries + 1] = fields[2]
    entries[#entries + 1] = fields[3]
  end
end
if #moved > 0 then
  local found = redis.call('TYPE', KEYS[2]).ok
  if found ~= 'hash' and found ~= 'none' then
    return broken(KEYS[2], 'the quarantine', 'a hash')
  end
  for i = 1, #moved, 2 do
    redis.call('ZREM', KEYS[1], moved[i])
    redis.call('HSET', KEYS[2], moved[i], moved[i + 1])
  end
end
out[5] = #moved / 2
out[6] = #requests / 6
for i = 1, #moved do
  out[#out + 1] = moved[i]
end
for i = 1, #requests do
  out[#out + 1] = requests[i]
end
for i = 1, #entries do
  out[#out + 1] = entries[i]
end
-- The first member not claimed (due, beyond the limit, or the next one in the future). The
-- members moved aside left the set, so the claimed ones (entries and requests) come first.
local taken = #entries / 5 + #requests / 6
local after = redis.call('ZRANGE', KEYS[1], taken, taken, 'WITHSCORES')
if #after > 0 then
  out[4] = after[2]
end
return out

-- Delete the lock only if it is still ours: a beat that lost it must not free another's.
-- A lock key of another type is not ours (and not RedBeat's): it is left alone.
-- KEYS[1] lock key; ARGV[1] token. Returns 1 when released, 0 otherwise.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

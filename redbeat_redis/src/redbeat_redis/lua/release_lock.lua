-- Delete the lock only if it is still ours: a beat that lost it must not free another's.
-- A lock key of another type is not ours (and not RedBeat's): it is left alone.
-- Standbys waiting on <lock key>:released are told at once (PUBLISH, with pcall: a refused
-- PUBLISH leaves them to their next poll, and the reply says so).
-- KEYS[1] lock key; ARGV[1] token. Returns {1, refusal} when released, {0, false} otherwise;
-- refusal: the server's error when it refused PUBLISH, else false.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return {0, false}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local told = redis.pcall('PUBLISH', KEYS[1] .. ':released', ARGV[1])
  if type(told) == 'table' and told.err ~= nil then
    return {1, told.err}
  end
  return {1, false}
end
return {0, false}

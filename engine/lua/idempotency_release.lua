#!lua
-- idempotency_release.lua: give up a claimed Idempotency-Key whose request stored no
-- answer (it failed before executing), so that a retry executes.
--
-- KEYS[1]  the key's record    ARGV[1]  the claim's lock token
if redis.call('HGET', KEYS[1], 'lock') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'status') == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

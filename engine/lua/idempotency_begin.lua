#!lua
-- idempotency_begin.lua: claim an Idempotency-Key for a request, or say what holds it.
--
-- KEYS[1]  the key's record, a hash: fp (the request's fingerprint), lock (the
--          token of the request executing it), status and body (its stored answer)
-- ARGV[1]  fingerprint   ARGV[2]  lock token   ARGV[3]  lock lifetime in ms
--
-- Returns {'new'}: claimed, execute; {'reused'}: the key came with another request;
-- {'done', status, body}: replay this answer; {'running', ms}: another request holds
-- it, its lock lapses in ms.
local rec = redis.call('HMGET', KEYS[1], 'fp', 'status', 'body')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'lock', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'new'}
end
if rec[1] ~= ARGV[1] then return {'reused'} end
if rec[2] then return {'done', rec[2], rec[3]} end
return {'running', redis.call('PTTL', KEYS[1])}

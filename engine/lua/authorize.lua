#!lua flags=allow-oom
-- authorize.lua: check an API key and take one token from its bucket, in one step.
-- (allow-oom: it only overwrites fields of one hash, so keys keep working when
-- Redis is full and the writes, refused whole, answer 503.)
--
-- KEYS[1]  the key's record, a hash: name, created, rate (tokens per second and
--          bucket size), scope, tokens and ts (the bucket at its last use, ts in ms)
--
-- Returns {1, name, scope}: allowed (a key without a scope is a backend key); {0}: no such key (unknown or revoked);
-- {2, name, wait_ms}: the bucket is empty, a token comes back in wait_ms.
local rec = redis.call('HMGET', KEYS[1], 'name', 'rate', 'tokens', 'ts', 'scope')
if not rec[1] then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(rec[2])
local tokens = tonumber(rec[3]) or rate
local ts = tonumber(rec[4]) or now
tokens = math.min(rate, tokens + math.max(0, now - ts) * rate / 1000)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
  return {2, rec[1], math.ceil((1 - tokens) * 1000 / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', now, 'used', now)
return {1, rec[1], rec[5] or 'backend'}

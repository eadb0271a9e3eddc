#!lua flags=allow-oom
-- bucket.lua: take one token from a token bucket that needs no record of its own (a limit the
-- engine's settings give, such as an offer's refused accepts), in one step.
--
-- KEYS[1]  the bucket, a hash: tokens, ts (ms); it lapses once it would be full again
-- ARGV[1]  size: tokens it holds when full
-- ARGV[2]  refill: tokens per second
--
-- Returns 0: allowed; else the ms until a token comes back.
local size = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(rec[1]) or size
local ts = tonumber(rec[2]) or now
tokens = math.min(size, tokens + math.max(0, now - ts) * refill / 1000)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000 / refill)
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((size - tokens) * 1000 / refill) + 1000)
return wait

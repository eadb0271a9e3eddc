#!lua flags=allow-oom
-- bucket.lua: take one token from a token bucket that needs no record of its own
-- (a player's: its rate is the engine's setting), in one step.
--
-- KEYS[1]  the bucket, a hash: tokens, ts (ms); it lapses when idle
-- ARGV[1]  rate: tokens per second, and the bucket's size
--
-- Returns 0: allowed; else the ms until a token comes back.
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(rec[1]) or rate
local ts = tonumber(rec[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call("PEXPIRE", KEYS[1], 60000)  -- a full bucket after a minute idle: the record can go
return wait

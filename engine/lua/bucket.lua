#!lua flags=allow-oom
-- bucket.lua: take one token from a token bucket that needs no record of its own (a limit the
-- engine's settings give, such as an offer's refused accepts), in one step.
--
-- KEYS[1]  the bucket, a hash: tokens, ts (ms)
-- ARGV[1]  size: tokens it holds when full
-- ARGV[2]  refill: tokens per second
--
-- Returns 0: allowed; else the ms until a token comes back.
-- include take_token.lua
return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))

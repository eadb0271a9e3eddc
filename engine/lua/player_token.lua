#!lua flags=allow-oom
-- player_token.lua: check that a player token still holds, and take one token from the
-- player's bucket, in one step (allow-oom: it only writes the bucket).
--
-- KEYS[1]  the record of the API key that minted the token: gone once the key is revoked, and
--          with another `gen` once a key with that hash is registered again
-- KEYS[2]  the player's token epoch: a counter each revocation of its tokens increments
-- KEYS[3]  the player's bucket, a hash: tokens, ts (ms); it lapses when idle
-- ARGV[1]  the key's generation the token was minted under
-- ARGV[2]  the player's epoch the token was minted in
-- ARGV[3]  rate: tokens per second, and the bucket's size
--
-- Returns {0, 'key_revoked'} or {0, 'token_revoked'}: refused; {1}: allowed;
-- {2, wait_ms}: the bucket is empty, a token comes back in wait_ms.
-- include take_token.lua
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'key_revoked'} end
  gen = '0'  -- a key registered before keys had generations
end
if gen ~= ARGV[1] then return {0, 'key_revoked'} end
if tonumber(ARGV[2]) < (tonumber(redis.call('GET', KEYS[2])) or 0) then return {0, 'token_revoked'} end
local rate = tonumber(ARGV[3])
local wait = take(KEYS[3], rate, rate)
if wait > 0 then return {2, wait} end
return {1}

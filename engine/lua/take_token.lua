-- take_token.lua: a token bucket that needs no record of its own, as a function other scripts
-- include (`engine.store.script_text` puts it where a script says `-- include take_token.lua`).
--
-- take(key, size, refill): one token from the bucket in hash `key` (tokens, ts in ms), holding
-- `size` when full and refilled `refill` tokens a second; 0 when taken, else the ms until one
-- comes back. The record lapses once the bucket would be full again.
local function take(key, size, refill)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local rec = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(rec[1]) or size
  local ts = tonumber(rec[2]) or now
  tokens = math.min(size, tokens + math.max(0, now - ts) * refill / 1000)
  local wait = 0
  if tokens < 1 then
    wait = math.ceil((1 - tokens) * 1000 / refill)
  else
    tokens = tokens - 1
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil((size - tokens) * 1000 / refill) + 1000)
  return wait
end

#!lua
-- commit.lua: apply one engine step atomically, only if no player it read has
-- changed since the caller's snapshot (optimistic concurrency), the outbox has
-- room, and no request with its Idempotency-Key (if it came with one) has been
-- answered; the answer is stored under the key in the same step, and the trade
-- is logged in each existing player's history.
-- The shebang makes Redis refuse the whole script when it is out of memory
-- (maxmemory), never a part of it.
--
-- KEYS[1]              outbox stream (entries: k = Kafka key, t = event type, e = event JSON)
-- KEYS[2]              counters hash
-- KEYS[3]              the Idempotency-Key's record, a hash: fp (the request's fingerprint), status, body
-- KEYS[4 .. 3+n]       player hashes (fields: v = version, s = state)
-- KEYS[4+n .. 3+2n]    each player's history stream (field e: the trade as that player saw it)
-- ARGV[1]              n, the number of player keys
-- ARGV[2]              the outbox's cap: at or above it, nothing is written
-- ARGV[3]              the request's fingerprint ('' = no Idempotency-Key)
-- ARGV[4], ARGV[5]     the answer's status and body, stored under the Idempotency-Key
-- ARGV[6]              how long the answer is kept, in seconds
-- ARGV[7]              entries each history keeps (older ones are trimmed)
-- ARGV[8 .. 7+n]       each player's version in the snapshot ('' = it did not exist)
-- ARGV[8+n .. 7+2n]    each player's new state ('' = unchanged); a new state gets version + 1
-- ARGV[8+2n .. 7+3n]   each player's history entry ('' = none: the player does not exist)
-- ARGV[8+3n]           counters to bump by one, separated by spaces
-- ARGV[9+3n ..]        events to append, as (key, type, json) triples, in order
--
-- Returns 1 when everything was written; 0 when a player changed (the caller reads
-- again and retries); -1 when the outbox is full; {'done', status, body} when a
-- request with the same Idempotency-Key and fingerprint was answered (replay it);
-- -3 when the key was used with another fingerprint. Nothing is written unless 1.
local n = tonumber(ARGV[1])
if ARGV[3] ~= '' then
  local rec = redis.call('HMGET', KEYS[3], 'fp', 'status', 'body')
  if rec[1] then
    if rec[1] ~= ARGV[3] then return -3 end
    return {'done', rec[2], rec[3]}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
for i = 1, n do
  local v = redis.call('HGET', KEYS[3 + i], 'v')
  if v == false then v = '' end
  if v ~= ARGV[7 + i] then return 0 end
end
for i = 1, n do
  local s = ARGV[7 + n + i]
  if s ~= '' then
    redis.call('HSET', KEYS[3 + i], 'v', tonumber(ARGV[7 + i]) + 1, 's', s)
  end
  local h = ARGV[7 + 2 * n + i]
  if h ~= '' then
    redis.call('XADD', KEYS[3 + n + i], 'MAXLEN', ARGV[7], '*', 'e', h)
  end
end
for counter in string.gmatch(ARGV[8 + 3 * n], '%S+') do
  redis.call('HINCRBY', KEYS[2], counter, 1)
end
for e = 9 + 3 * n, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'k', ARGV[e], 't', ARGV[e + 1], 'e', ARGV[e + 2])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'fp', ARGV[3], 'status', ARGV[4], 'body', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return 1

#!lua
-- commit.lua: apply one engine step atomically, only if no player it read has
-- changed since the caller's snapshot (optimistic concurrency), the outbox has
-- room, and no request with its Idempotency-Key (if it came with one) has been
-- answered; the answer is stored under the key in the same step, the trade
-- is logged in each existing player's history, and an offer is opened or closed.
-- The shebang makes Redis refuse the whole script when it is out of memory
-- (maxmemory), never a part of it.
--
-- KEYS[1]              outbox stream (entries: k = Kafka key, t = event type, e = event JSON)
-- KEYS[2]              counters hash
-- KEYS[3]              the Idempotency-Key's record, a hash: fp (the request's fingerprint), status, body
-- KEYS[4 .. 3+n]       player hashes (fields: v = version, s = state)
-- KEYS[4+n .. 3+2n]    each player's history stream (field e: the trade as that player saw it)
-- KEYS[4+2n .. 12+2n]  with an offer step only: the offer's hash (o = the offer, st = status, n = its
--                      number, closed_at, trade_id), the open offers by expiry (sorted set), the offer
--                      counter, then for the maker and for the addressee each: its open offers, its
--                      offers of the closing status (open: unused), all its offers (sorted sets by number)
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
-- ARGV[9+3n]           the offer step ('' = none), JSON: op ('open' or 'close'), id, maker (the maker's
--                      index among the players), and for open: offer (its JSON), expires_ms, max_open (the
--                      maker's cap of open offers), keep (entries each player's lists keep); for close:
--                      status, closed_at, trade_id, keep_s (seconds the closed offer is kept), keep
-- ARGV[10+3n ..]       events to append, as (key, type, json) triples, in order
-- KEYS[#KEYS - 1]      the economy's running totals (goods.lua), moved by what the step moves
-- KEYS[#KEYS]          the audit's hash (goods.lua): a changed player it already counted is counted again
--
-- Returns 1 when everything was written; 0 when a player changed or the offer is
-- no longer open (the caller reads again and decides again); -1 when the outbox
-- is full; {'done', status, body} when a request with the same Idempotency-Key and
-- fingerprint was answered (replay it); -3 when the key was used with another
-- fingerprint; -4 when the maker holds its cap of open offers. Nothing is written unless 1.
-- include goods.lua
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
local offer = nil
local ok = 4 + 2 * n  -- the offer's keys
if ARGV[9 + 3 * n] ~= '' then
  offer = cjson.decode(ARGV[9 + 3 * n])
  if offer.op == 'open' then
    if tonumber(redis.call('HGET', KEYS[3 + offer.maker], 'o') or '0') >= offer.max_open then return -4 end
  elseif redis.call('HGET', KEYS[ok], 'st') ~= 'open' then
    return 0
  end
end
local k_totals, k_audit = KEYS[#KEYS - 1], KEYS[#KEYS]
local cursor, held = audit_cursor(k_audit), goods()
for i = 1, n do
  local s = ARGV[7 + n + i]
  if s ~= '' then
    local d, was = goods(), redis.call('HGET', KEYS[3 + i], 's')
    add_state(d, 1, s)
    if was then add_state(d, -1, was) end
    merge(held, d)
    if cursor >= 0 and tonumber(string.match(KEYS[3 + i], '(%d+)$')) <= cursor then
      apply(k_audit, d, 'g', 'i:')
    end
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
if offer ~= nil then
  local lists = {{ok + 3, ok + 4, ok + 5}, {ok + 6, ok + 7, ok + 8}}  -- open, closing status, all
  local escrow = goods()
  if offer.op == 'open' then
    add_give(escrow, 1, cjson.decode(offer.offer).give)
    redis.call('HINCRBY', k_totals, 'open', 1)
    local number = redis.call('INCR', KEYS[ok + 2])
    redis.call('HSET', KEYS[ok], 'o', offer.offer, 'st', 'open', 'n', number)
    redis.call('ZADD', KEYS[ok + 1], offer.expires_ms, offer.id)
    redis.call('HINCRBY', KEYS[3 + offer.maker], 'o', 1)
    for _, l in ipairs(lists) do
      redis.call('ZADD', KEYS[l[1]], number, offer.id)
      redis.call('ZADD', KEYS[l[3]], number, offer.id)
      redis.call('ZREMRANGEBYRANK', KEYS[l[3]], 0, -offer.keep - 1)
    end
  else
    local number, raw = unpack(redis.call('HMGET', KEYS[ok], 'n', 'o'))
    add_give(escrow, -1, cjson.decode(raw).give)
    redis.call('HINCRBY', k_totals, 'open', -1)
    redis.call('HSET', KEYS[ok], 'st', offer.status, 'closed_at', offer.closed_at, 'trade_id', offer.trade_id)
    redis.call('EXPIRE', KEYS[ok], offer.keep_s)
    redis.call('ZREM', KEYS[ok + 1], offer.id)
    redis.call('HINCRBY', KEYS[3 + offer.maker], 'o', -1)
    for _, l in ipairs(lists) do
      redis.call('ZREM', KEYS[l[1]], offer.id)
      redis.call('ZADD', KEYS[l[2]], number, offer.id)
      redis.call('ZREMRANGEBYRANK', KEYS[l[2]], 0, -offer.keep - 1)
    end
  end
  apply(k_totals, escrow, 'eg', 'e:')
end
apply(k_totals, held, 'g', 'i:')
for e = 10 + 3 * n, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'k', ARGV[e], 't', ARGV[e + 1], 'e', ARGV[e + 2])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'fp', ARGV[3], 'status', ARGV[4], 'body', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return 1

-- wrk script: random trades between players 1..PLAYERS; player 1 pays player 2
-- one gold, so nearly every trade executes. From the environment: PLAYERS, API_KEY
-- (sent as `Authorization: Bearer`), and IDEMPOTENT=1 to send a fresh
-- Idempotency-Key with every request (RUN keeps one run's keys apart from another's).
local players = tonumber(os.getenv("PLAYERS") or "1000")
local key = os.getenv("API_KEY") or ""
local idempotent = os.getenv("IDEMPOTENT") == "1"
local run = os.getenv("RUN") or tostring(os.time())
local threads = 0
local sent = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  local a = math.random(1, players)
  local b = math.random(1, players - 1)
  if b >= a then b = b + 1 end
  local body = string.format(
    '{"player_1":{"player_id":%d,"items_traded":[],"gold_traded":1},' ..
    '"player_2":{"player_id":%d,"items_traded":[],"gold_traded":0}}', a, b)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}
  if idempotent then
    sent = sent + 1
    headers["Idempotency-Key"] = string.format("%s-%d-%d", run, tid, sent)
  end
  return wrk.format("POST", "/trade", headers, body)
end

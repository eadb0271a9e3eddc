-- wrk script: random trades between players 1..PLAYERS; player 1 pays player 2
-- one gold, so nearly every trade executes. PLAYERS comes from the environment.
local players = tonumber(os.getenv("PLAYERS") or "1000")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local a = math.random(1, players)
  local b = math.random(1, players - 1)
  if b >= a then b = b + 1 end
  local body = string.format(
    '{"player_1":{"player_id":%d,"items_traded":[],"gold_traded":1},' ..
    '"player_2":{"player_id":%d,"items_traded":[],"gold_traded":0}}', a, b)
  return wrk.format(nil, "/trade", nil, body)
end

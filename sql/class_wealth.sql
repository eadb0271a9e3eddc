-- Gold and item value (catalog value x quantity held) per player class, over each player's latest state.
with latest as (
  select player_id, max(version) as version from state_summaries group by player_id
), wealth as (
  select s.player_id, s.player_class, s.gold, s.cum_item_value as item_value
  from state_summaries s
  join latest l on s.player_id = l.player_id and s.version = l.version
)
select player_class, count(*) as players,
       avg(gold) as avg_gold, approx_percentile(gold, 0.5) as median_gold, max(gold) as max_gold,
       avg(item_value) as avg_item_value, approx_percentile(item_value, 0.5) as median_item_value,
       max(item_value) as max_item_value
from wealth
group by player_class
order by avg_gold + avg_item_value desc

-- Gold and item value (catalog value x quantity held) per player class, over each player's latest state.
with latest as (
  select player_id, max(version) as version from player_states group by player_id
), wealth as (
  select p.player_id, p.player_class, max(p.gold) as gold,
         coalesce(sum(p.item_held_value * p.item_held_quantity), 0) as item_value
  from player_states p
  join latest l on p.player_id = l.player_id and p.version = l.version
  group by p.player_id, p.player_class
)
select player_class, count(*) as players,
       avg(gold) as avg_gold, approx_percentile(gold, 0.5) as median_gold, max(gold) as max_gold,
       avg(item_value) as avg_item_value, approx_percentile(item_value, 0.5) as median_item_value,
       max(item_value) as max_item_value
from wealth
group by player_class
order by avg_gold + avg_item_value desc

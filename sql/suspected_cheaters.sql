-- Suspected cheaters: players between whom value flowed one way in lopsided trades (see
-- lopsided_trades.sql) at least {min_repeats} times. A gift is one-off; a cheater passing
-- valuables to an accomplice repeats. A row per player and role: 'giver' (the cheater) or
-- 'receiver' (the accomplice), with the partners, trades and value moved in such pairs.
with pairs as (
  select giver_id, receiver_id, count(*) as trades, sum(value_given - value_received) as value_moved
  from trade_values
  where value_given >= {min_value} and value_given >= {ratio} * greatest(value_received, 1)
  group by giver_id, receiver_id
  having count(*) >= {min_repeats}
), roles as (
  select giver_id as player_id, 'giver' as role, receiver_id as partner_id, trades, value_moved from pairs
  union all
  select receiver_id, 'receiver', giver_id, trades, value_moved from pairs
)
select player_id, role, count(*) as partners, array_join(array_sort(array_agg(partner_id)), ',') as partner_ids,
       sum(trades) as lopsided_trades, sum(value_moved) as value_moved
from roles
group by player_id, role
order by value_moved desc, lopsided_trades desc, player_id, role

-- The players most involved in lopsided trades (see lopsided_trades.sql), as receivers:
-- how many such trades, from how many givers, and how much value they gained.
select receiver_id as player_id,
       count(*) as lopsided_trades,
       count(distinct giver_id) as distinct_givers,
       sum(value_given - value_received) as value_gained
from trade_values
where value_given >= {min_value} and value_given >= {ratio} * greatest(value_received, 1)
group by receiver_id
order by value_gained desc, player_id

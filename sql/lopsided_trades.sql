-- Executed trades in which one side gave at least {ratio} times the value it received
-- (and at least {min_value} gold worth): gifts and fire sales, or cheaters passing items to accomplices.
select trade_id, trade_time, giver_id, receiver_id, value_given, value_received,
       cast(value_given as double) / greatest(value_received, 1) as ratio
from trade_values
where value_given >= {min_value} and value_given >= {ratio} * greatest(value_received, 1)
order by ratio desc, value_given desc, trade_id

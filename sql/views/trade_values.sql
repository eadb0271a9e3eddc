-- trade_values: per executed trade and side, the value that side gave (catalog value of its items
-- plus its gold) and the value it received from the other side. Trino view over `trades`.
create or replace view trade_values as
with sides as (
  select trade_id, side,
         max(trade_time) as trade_time,
         max(player_id) as player_id,
         max(counterparty_id) as counterparty_id,
         coalesce(sum(item_traded_value * item_traded_quantity), 0) + max(gold_traded) as value_given
  from trades
  where valid_trade
  group by trade_id, side
)
select g.trade_id, g.trade_time, g.player_id as giver_id, g.counterparty_id as receiver_id,
       g.value_given, r.value_given as value_received
from sides g
join sides r on g.trade_id = r.trade_id and g.side <> r.side

-- trade_values: per executed trade and side, the value that side gave (catalog value of its items
-- plus its gold) and the value it received from the other side. Trino view over `trade_sides`.
create or replace view trade_values as
select trade_id, trade_time, player_id as giver_id, counterparty_id as receiver_id, value_given, value_received
from trade_sides
where valid_trade

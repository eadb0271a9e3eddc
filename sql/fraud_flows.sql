-- fraud_flows: the trade graph's lopsided flows, what the suspected_fraud report's patterns are read
-- from (orchestration.fraud). Goods are valued at the market (market_prices: the week's median price of
-- fair purchases; the catalog where an item had none). A trade is lopsided when one side gave at least
-- {min_value} and {ratio} times what it got: an 'overpay' when that side gave only gold for items, else
-- a 'transfer'. A row per (giver, receiver, kind): trades, value moved (given less received), and the
-- executed trades of the giver and of the receiver in all.
with sides as (
  select t.trade_id, t.side, t.player_id, t.counterparty_id,
         coalesce(max(t.gold_traded), 0) + coalesce(sum(t.item_traded_quantity
                                           * coalesce(m.median_price, t.item_traded_value)), 0) as value_given,
         count(t.item_traded_item_id) as item_lines
  from trades t
  left join market_prices m on m.dt = t.dt and m.item_id = t.item_traded_item_id
  where t.valid_trade
  group by t.trade_id, t.side, t.player_id, t.counterparty_id
),
edges as (
  select a.player_id as giver_id, a.counterparty_id as receiver_id,
         a.value_given - b.value_given as value_moved,
         case when a.item_lines = 0 and b.item_lines > 0 then 'overpay' else 'transfer' end as kind
  from sides a
  join sides b on b.trade_id = a.trade_id and b.side <> a.side
  where a.value_given >= {min_value} and a.value_given >= {ratio} * greatest(b.value_given, 1)
),
flows as (
  select giver_id, receiver_id, kind, count(*) as trades, cast(round(sum(value_moved)) as bigint) as value_moved
  from edges
  group by giver_id, receiver_id, kind
),
activity as (
  select player_id, count(*) as trades from trade_sides where valid_trade group by player_id
)
select f.giver_id, f.receiver_id, f.kind, f.trades, f.value_moved,
       g.trades as giver_trades, r.trades as receiver_trades
from flows f
join activity g on g.player_id = f.giver_id
join activity r on r.player_id = f.receiver_id
order by f.giver_id, f.receiver_id, f.kind

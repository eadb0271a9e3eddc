-- market_prices: per item and UTC day, the median unit price of the item's fair purchases over the
-- seven days up to that day. A purchase: an executed trade where one side gives units of a single
-- item and no gold, the other only gold; fair: priced between a tenth of the item's catalog value
-- and ten times it, so that sellers taking far more than an item is worth (real-money trading) do
-- not move the yardstick they are measured by. Trino view; suspected_fraud values goods at it, and at
-- the catalog where an item had no fair purchase that week.
create or replace view market_prices as
with purchases as (
  select s.dt, t.item_traded_item_id as item_id, t.item_traded_value as catalog_value,
         cast(b.gold_given as double) / s.units_given as unit_price
  from trade_sides s
  join trade_sides b on b.dt = s.dt and b.trade_id = s.trade_id and b.side <> s.side
  join trades t on t.dt = s.dt and t.trade_id = s.trade_id and t.side = s.side
  where s.valid_trade and s.items_given = 1 and s.gold_given = 0 and b.items_given = 0 and b.gold_given > 0
),
fair as (
  select dt, item_id, unit_price from purchases
  where unit_price between catalog_value / 10.0 and catalog_value * 10.0
),
days as (select distinct dt from trade_sides)
select d.dt, f.item_id, approx_percentile(f.unit_price, 0.5) as median_price, count(*) as purchases
from days d
join fair f on f.dt <= d.dt and f.dt >= cast(date_add('day', -6, date(d.dt)) as varchar)
group by d.dt, f.item_id

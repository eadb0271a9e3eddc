-- economy_minutes: the economy a minute at a time, as the sinks land it (a few seconds behind the
-- engine): trades executed and rejected (by reason), gold and item units moved by executed trades,
-- lopsided trades (one side giving at least 10 times what it got, and 1,000 or more), new players,
-- and offers opened, accepted, cancelled and expired. Sums of the sinks' per-batch deltas, so a late
-- event updates its own minute. `dt`, the minute's UTC day, is the tables' partition: filter on it
-- too, and Trino reads only those days. Trino view; the dashboard reads its last hour.
create or replace view economy_minutes as
with deltas as (
  select minute, dt, measure, reason, value from economy_trade_deltas
  union all
  select minute, dt, measure, reason, value from economy_player_deltas
),
reasons as (
  select minute, dt, map_agg(reason, rejected) as rejected_by_reason
  from (select minute, dt, reason, sum(value) as rejected from deltas
        where measure = 'trades_rejected' group by minute, dt, reason)
  group by minute, dt
),
minutes as (
  select minute, dt,
         coalesce(sum(value) filter (where measure = 'trades_executed'), 0) as trades_executed,
         coalesce(sum(value) filter (where measure = 'trades_rejected'), 0) as trades_rejected,
         coalesce(sum(value) filter (where measure = 'gold_moved'), 0) as gold_moved,
         coalesce(sum(value) filter (where measure = 'items_moved'), 0) as items_moved,
         coalesce(sum(value) filter (where measure = 'lopsided_trades'), 0) as lopsided_trades,
         coalesce(sum(value) filter (where measure = 'new_players'), 0) as new_players,
         coalesce(sum(value) filter (where measure = 'offers_opened'), 0) as offers_opened,
         coalesce(sum(value) filter (where measure = 'offers_accepted'), 0) as offers_accepted,
         coalesce(sum(value) filter (where measure = 'offers_cancelled'), 0) as offers_cancelled,
         coalesce(sum(value) filter (where measure = 'offers_expired'), 0) as offers_expired,
         coalesce(sum(value) filter (where measure = 'offers_refused'), 0) as offers_refused
  from deltas
  group by minute, dt
)
select m.minute, m.dt, m.trades_executed, m.trades_rejected,
       coalesce(r.rejected_by_reason, cast(map() as map(varchar, bigint))) as rejected_by_reason,
       m.gold_moved, m.items_moved, m.lopsided_trades, m.new_players,
       m.offers_opened, m.offers_accepted, m.offers_cancelled, m.offers_expired, m.offers_refused
from minutes m left join reasons r on r.minute = m.minute and r.dt = m.dt

-- Trades per hour (UTC): requests, executed and rejected.
select date_trunc('hour', trade_time) as hour,
       count(distinct trade_id) as trades,
       count(distinct case when valid_trade then trade_id end) as executed,
       count(distinct case when not valid_trade then trade_id end) as rejected
from trades
group by 1
order by 1

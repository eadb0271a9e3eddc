-- Trades per hour (UTC): requests, executed and rejected.
select date_trunc('hour', trade_time) as hour,
       count(*) as trades,
       count_if(valid_trade) as executed,
       count_if(not valid_trade) as rejected
from trade_sides
where side = 1
group by 1
order by 1

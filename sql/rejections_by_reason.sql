-- Rejected trades by reason.
select fail_reason, count(*) as trades
from trade_sides
where side = 1 and not valid_trade
group by fail_reason
order by trades desc, fail_reason

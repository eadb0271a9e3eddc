-- Rejected trades by reason.
select fail_reason, count(distinct trade_id) as trades
from trades
where not valid_trade
group by fail_reason
order by trades desc, fail_reason

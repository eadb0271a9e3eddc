select count(distinct trade_id) from trades

-- How many trades (executed or rejected): the seed's trade_count (sql/seed/), read from
-- trade_sides, where each trade has exactly one row per side.
select count(*) as trades from trade_sides where side = 1

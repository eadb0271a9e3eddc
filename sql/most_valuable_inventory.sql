-- The player state whose items are worth the most: the seed's most_valuable_inventory (sql/seed/),
-- read from state_summaries (a row per state) instead of grouping every item held.
select player_id, username, state_id, state_time, gold, cum_item_value
from state_summaries order by cum_item_value desc, state_time, state_id limit 1

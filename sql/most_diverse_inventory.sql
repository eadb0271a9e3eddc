-- The player state holding the most distinct items: the seed's most_diverse_inventory (sql/seed/),
-- read from state_summaries (a row per state) instead of grouping every item held.
select player_id, username, state_id, state_time, num_uniq_items
from state_summaries order by num_uniq_items desc, state_time, state_id limit 1

select item_traded_item_id, item_traded_name, count(*) as num_traded from trades group by item_traded_item_id, item_traded_name order by num_traded desc

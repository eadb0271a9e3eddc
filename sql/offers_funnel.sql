-- Offers by the day they opened: how many were accepted, cancelled, expired or are still open,
-- and the median seconds from opening to acceptance (exact: the middle one, or the mean of the
-- middle two). Refused accepts are not an end: an offer stays open after them.
with opened as (
  select offer_id, created_at, cast(date(created_at) as varchar) as day
  from offers where action = 'opened'
),
ended as (
  select offer_id, action, action_time from offers where action in ('accepted', 'cancelled', 'expired')
),
funnel as (
  select o.day, o.offer_id, e.action,
         date_diff('millisecond', o.created_at, e.action_time) / 1e3 as seconds
  from opened o left join ended e on e.offer_id = o.offer_id
),
ranked as (
  select day, seconds, row_number() over (partition by day order by seconds) as n,
         count(*) over (partition by day) as accepted
  from funnel where action = 'accepted'
),
medians as (
  select day, avg(seconds) as median_seconds_to_accept
  from ranked where n in ((accepted + 1) / 2, (accepted + 2) / 2)
  group by day
)
select f.day, count(*) as opened, count_if(f.action = 'accepted') as accepted,
       count_if(f.action = 'cancelled') as cancelled, count_if(f.action = 'expired') as expired,
       count_if(f.action is null) as still_open, m.median_seconds_to_accept
from funnel f left join medians m on m.day = f.day
group by f.day, m.median_seconds_to_accept
order by f.day

-- description: >
--   System segmentation (geographic): every person as of the as-of date by city, with the city's
--   size, buyers, spend and reachability. Recomputed every run.
-- owner: growth@bakery.example
-- tags: [system, geographic]
-- grain: [city]
-- columns:
--   city: The city of the golden record (cleaned); 'unknown' without one.
--   customers: People in the city.
--   share_of_customers: Their share of all people.
--   buyers_365d: Those with a completed order in the 365 days up to the as-of date.
--   revenue_365d: Their spend in those days.
--   email_reachable: Those who can be e-mailed.
select
    coalesce(city, 'unknown') as city,
    count(*) as customers,
    count(*) / sum(count(*)) over () as share_of_customers,
    count(*) filter (where orders_365d > 0) as buyers_365d,
    sum(revenue_365d) as revenue_365d,
    count(*) filter (where is_email_reachable) as email_reachable
from core.customer_features
group by coalesce(city, 'unknown')

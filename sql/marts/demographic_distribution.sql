-- description: >
--   System segmentation (demographic): every person as of the as-of date in one cell of age band x
--   gender, with the cell's size, buyers, spend and reachability. Recomputed every run, so it
--   follows the base; filter core.customer_features on age_band and gender for the people.
-- owner: growth@bakery.example
-- tags: [system, demographic]
-- grain: [age_band, gender]
-- columns:
--   age_band: The age band (18-24, 25-34, ... 65+); 'unknown' without a birth date.
--   gender: female, male, or 'unknown'.
--   customers: People in the cell.
--   share_of_customers: Their share of all people.
--   buyers_365d: Those with a completed order in the 365 days up to the as-of date.
--   revenue_365d: Their spend in those days.
--   email_reachable: Those who can be e-mailed.
select
    coalesce(age_band, 'unknown') as age_band,
    coalesce(gender, 'unknown') as gender,
    count(*) as customers,
    count(*) / sum(count(*)) over () as share_of_customers,
    count(*) filter (where orders_365d > 0) as buyers_365d,
    sum(revenue_365d) as revenue_365d,
    count(*) filter (where is_email_reachable) as email_reachable
from core.customer_features
group by coalesce(age_band, 'unknown'), coalesce(gender, 'unknown')

-- description: >
--   Combined criteria (behavioural + channel preference): coffee is what they buy most, and they
--   can be e-mailed (valid address, opted in, not unsubscribed since).
-- owner: growth@bakery.example
-- tags: [behavioural, channel]
-- grain: [customer_id]
select
    customer_id,
    favourite_category,
    orders_365d
from core.customer_features
where favourite_category = 'coffee'
    and is_email_reachable
    and orders_365d > 0

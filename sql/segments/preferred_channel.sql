-- description: >
--   System segment (channel), one per purchase channel: the people who place most of their
--   completed orders there (core.customer_features.preferred_channel; ties by channel name).
-- owner: growth@bakery.example
-- tags: [system, channel]
-- grain: [customer_id]
-- variants: [in_store, app, web, delivery]
select
    customer_id,
    preferred_channel,
    orders_total
from core.customer_features
where preferred_channel = param('variant')

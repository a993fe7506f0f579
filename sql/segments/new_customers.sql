-- description: System segment (lifecycle) - first purchase within the 30 days up to the as-of date.
-- owner: growth@bakery.example
-- tags: [system, lifecycle]
-- grain: [customer_id]
select
    customer_id,
    first_order_at,
    orders_total
from core.customer_features
where lifecycle_stage = 'new'

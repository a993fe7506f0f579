-- description: System segment (purchase activity) - bought before, but nothing in the last 180 days.
-- owner: growth@bakery.example
-- tags: [system, lifecycle]
-- grain: [customer_id]
select
    customer_id,
    last_order_at,
    recency_days,
    orders_total
from core.customer_features
where lifecycle_stage = 'lapsed'

-- description: >
--   A person's first ever completed purchase (triggers the welcome e-mail chain). One row per
--   person; it lands in the day partition of that purchase.
-- owner: growth@bakery.example
-- tags: [lifecycle, trigger]
-- grain: [customer_id]
select
    customer_id,
    min(ordered_at) as occurred_at,
    arg_min(order_id, ordered_at) as order_id,
    arg_min(store_id, ordered_at) as store_id
from core.orders
where status = 'completed'
    and customer_id is not null
group by customer_id

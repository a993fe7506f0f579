-- description: Customers who bought a croissant at least once, up to the end of the as-of day.
-- owner: growth@bakery.example
-- tags: [behavioural, transactional]
-- grain: [customer_id]
-- columns:
--   first_croissant_at: When they first bought one.
--   croissant_orders: How many of their orders had a croissant.
with croissant_lines as (
    select
        customer_id,
        order_id,
        ordered_at
    from core.order_items
    where category = 'croissant'
        and status = 'completed'
        and customer_id is not null
        and ordered_at < as_of_end()
)

select
    customer_id,
    min(ordered_at) as first_croissant_at,
    max(ordered_at) as last_croissant_at,
    count(distinct order_id) as croissant_orders
from croissant_lines
group by customer_id

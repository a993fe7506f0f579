-- description: >
--   A person's first ever completed purchase (triggers the welcome e-mail chain). One row per
--   person; it lands in the day partition of that purchase.
-- owner: growth@bakery.example
-- tags: [lifecycle, trigger]
-- grain: [customer_id]
with completed as (
    select
        customer_id,
        ordered_at,
        order_id,
        store_id,
        row_number() over (
            partition by customer_id order by ordered_at, order_id
        ) as purchase_number
    from core.orders
    where status = 'completed'
        and customer_id is not null
)

select
    customer_id,
    ordered_at as occurred_at,
    order_id,
    store_id
from completed
where purchase_number = 1

-- description: >
--   Every purchase that ends a gap: a completed order at least 90 days (business days: dates in
--   the business time zone, whatever the clocks did in between) after the person's previous
--   completed order. Win-back chains start here.
-- owner: growth@bakery.example
-- tags: [lifecycle, transactional, trigger]
-- grain: [order_id]
-- params: {min_gap_days: 90}
-- columns:
--   previous_order_at: The order before it.
--   gap_days: Business days between the two orders' dates.
with orders as (
    select
        customer_id,
        order_id,
        ordered_at,
        lag(ordered_at) over (
            partition by customer_id order by ordered_at, order_id
        ) as previous_order_at
    from core.orders
    where status = 'completed'
        and customer_id is not null
)

select
    customer_id,
    ordered_at as occurred_at,
    order_id,
    previous_order_at,
    -- a date cast of an instant is its business day: definitions run in the business time zone
    date_diff('day', cast(previous_order_at as date), cast(ordered_at as date)) as gap_days
from orders
where previous_order_at is not null
    and date_diff('day', cast(previous_order_at as date), cast(ordered_at as date))
    >= param('min_gap_days')

-- description: >
--   Transactional (recency): bought in the last month - a completed order in the month up to the
--   end of the as-of day (a calendar month in the business time zone: 31 March back to 28 February).
-- owner: growth@bakery.example
-- tags: [transactional, lifecycle]
-- grain: [customer_id]
select
    customer_id,
    count(*) as orders_last_month,
    max(ordered_at) as last_order_at
from core.orders
where status = 'completed'
    and customer_id is not null
    and ordered_at >= as_of_end() - interval 1 month
    and ordered_at < as_of_end()
group by customer_id

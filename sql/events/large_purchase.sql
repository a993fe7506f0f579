-- description: >
--   Every completed purchase above a threshold (1,500 in the business's currency), at the moment
--   of purchase: thank-you chains, VIP service.
-- owner: growth@bakery.example
-- tags: [transactional, trigger]
-- grain: [order_id]
-- params: {min_amount: 1500}
select
    customer_id,
    ordered_at as occurred_at,
    order_id,
    store_id,
    channel,
    total_amount
from core.orders
where status = 'completed'
    and customer_id is not null
    and total_amount > param('min_amount')

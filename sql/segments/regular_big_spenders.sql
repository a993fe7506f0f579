-- description: >
--   Combined criteria (transactional): regular customers - at least 4 completed orders in the 365
--   days up to the as-of date - whose average order, over all their orders, is above 5,000 in the
--   business's currency.
-- owner: growth@bakery.example
-- tags: [transactional, behavioural]
-- grain: [customer_id]
-- params: {min_orders_365d: 4, min_average_order: 5000}
select
    customer_id,
    orders_365d,
    avg_order_value,
    revenue_365d
from core.customer_features
where orders_365d >= param('min_orders_365d')
    and avg_order_value > param('min_average_order')

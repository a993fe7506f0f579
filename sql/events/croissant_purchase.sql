-- description: Every completed purchase that contained a croissant, at the moment of purchase.
-- owner: growth@bakery.example
-- tags: [behavioural, transactional]
-- grain: [order_id]
-- columns:
--   occurred_at: The instant of the purchase (store-local time read in the store's zone).
--   croissants: How many croissants the order held.
select
    customer_id,
    ordered_at as occurred_at,
    order_id,
    store_id,
    sum(quantity) as croissants
from core.order_items
where category = 'croissant'
    and status = 'completed'
    and customer_id is not null
group by customer_id, ordered_at, order_id, store_id

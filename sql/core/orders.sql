-- description: Orders re-keyed to the person (customer_id); guest orders keep a null customer_id.
-- owner: data-eng@bakery.example
-- grain: [order_id]
-- incremental: {from: staging.orders, via: {core.customer_identity: source_customer_id}}
-- tests:
--   - relationships: {column: customer_id, to: core.customers, field: customer_id}
with orders as (
    select * from staging.orders
),

identity as (
    select source_customer_id, customer_id from core.customer_identity
)

select
    o.order_id,
    i.customer_id,
    o.source_customer_id,
    o.store_id,
    o.ordered_at,
    o.ordered_at_local,
    o.channel,
    o.status,
    o.total_amount
from orders as o
left join identity as i on i.source_customer_id = o.source_customer_id

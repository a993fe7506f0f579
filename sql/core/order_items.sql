-- description: Lines of known orders, with the person, time and product category of each line.
-- owner: data-eng@bakery.example
-- grain: [order_id, line_number]
-- incremental: {from: staging.order_items, via: {core.orders: order_id, staging.products: product_id}}
with items as (
    select * from staging.order_items
),

orders as (
    select order_id, customer_id, store_id, ordered_at, status from core.orders
),

products as (
    select product_id, product_name, category from staging.products
)

select
    i.order_id,
    i.line_number,
    o.customer_id,
    o.store_id,
    o.ordered_at,
    o.status,
    i.product_id,
    p.product_name,
    p.category,
    i.quantity,
    i.unit_price,
    i.quantity * i.unit_price as line_amount
from items as i
inner join orders as o on o.order_id = i.order_id
inner join products as p on p.product_id = i.product_id

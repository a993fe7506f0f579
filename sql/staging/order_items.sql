-- description: >
--   Order lines with typed quantities and prices (comma decimals accepted). Rejected with a reason:
--   no order_id or line_number, an order that is unknown or was itself rejected (its lines would
--   otherwise vanish silently downstream), an unknown product, a quantity that is not a positive integer, an
--   unreadable or negative price.
-- owner: data-eng@bakery.example
-- grain: [order_id, line_number]
-- references: {order_id: staging.orders, product_id: staging.products}
-- tests:
--   - relationships: {column: product_id, to: staging.products}
--   - expression: {name: quantity_positive, sql: "quantity > 0"}
with source as (
    select * from raw.order_items
),

products as (
    select product_id from staging.products
),

orders as (
    select order_id from staging.orders
),

cleaned as (
    select
        nullif(trim(i.order_id), '') as order_id,
        nullif(trim(i.line_number), '') as line_number_text,
        try_cast(nullif(trim(i.line_number), '') as integer) as line_number,
        nullif(trim(i.product_id), '') as product_id,
        nullif(trim(i.quantity), '') as quantity_text,
        try_cast(nullif(trim(i.quantity), '') as integer) as quantity,
        nullif(trim(i.unit_price), '') as unit_price_text,
        crm_decimal(i.unit_price) as unit_price,
        p.product_id is not null as is_known_product,
        o.order_id is not null as is_known_order,
        i._source_file,
        i._file_sha256,
        i._row_number,
        i._loaded_at,
        i._parse_error
    from source as i
    left join products as p on p.product_id = nullif(trim(i.product_id), '')
    left join orders as o on o.order_id = nullif(trim(i.order_id), '')
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when order_id is null then 'missing order_id'
            when line_number is null
                then 'missing or unparseable line_number: ' || coalesce(line_number_text, '(empty)')
            when not is_known_order then 'unknown or rejected order: ' || order_id
            when not is_known_product then 'unknown product: ' || coalesce(product_id, '(empty)')
            when quantity is null or quantity <= 0
                then 'quantity must be a positive integer: ' || coalesce(quantity_text, '(empty)')
            when unit_price_text is not null and unit_price is null
                then 'unparseable unit_price: ' || unit_price_text
            when unit_price < 0 then 'negative unit_price: ' || unit_price_text
        end as _problem
    from cleaned
)

select
    order_id,
    line_number,
    product_id,
    quantity,
    unit_price,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

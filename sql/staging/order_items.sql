-- description: Order lines with typed quantities and prices; lines of unknown products are rejected.
-- owner: data-eng@bakery.example
-- grain: [order_id, line_number]
with source as (
    select * from raw.order_items
),

products as (
    select product_id from staging.products
),

cleaned as (
    select
        nullif(trim(i.order_id), '') as order_id,
        try_cast(nullif(trim(i.line_number), '') as integer) as line_number,
        nullif(trim(i.product_id), '') as product_id,
        try_cast(nullif(trim(i.quantity), '') as integer) as quantity,
        crm_decimal(i.unit_price) as unit_price,
        p.product_id is not null as is_known_product,
        i._source_file,
        i._file_sha256,
        i._row_number,
        i._loaded_at,
        i._parse_error
    from source as i
    left join products as p on p.product_id = nullif(trim(i.product_id), '')
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_id, line_number order by _loaded_at desc, _row_number desc
        ) as _version_rank
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
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when order_id is null then 'missing order_id'
        when line_number is null then 'missing or unparseable line_number'
        when not is_known_product then 'unknown product: ' || coalesce(product_id, '(empty)')
        when quantity is null or quantity <= 0 then 'quantity must be a positive integer'
        when _version_rank > 1 then 'superseded: order line loaded again later'
    end as _reject_reason
from ranked

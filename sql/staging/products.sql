-- description: Product catalogue, one row per product, categories lower-cased.
-- owner: data-eng@bakery.example
-- grain: [product_id]
with source as (
    select * from raw.products
),

cleaned as (
    select
        nullif(trim(product_id), '') as product_id,
        nullif(trim(product_name), '') as product_name,
        lower(nullif(trim(category), '')) as category,
        crm_decimal(unit_price) as unit_price,
        coalesce(crm_bool(is_active), true) as is_active,
        _source_file,
        _file_sha256,
        _row_number,
        _loaded_at,
        _parse_error
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by product_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
)

select
    product_id,
    product_name,
    category,
    unit_price,
    is_active,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when product_id is null then 'missing product_id'
        when category is null then 'missing category'
        when _version_rank > 1 then 'superseded: product_id ' || product_id || ' loaded again later'
    end as _reject_reason
from ranked

-- description: >
--   Product catalogue, one row per product, categories lower-cased, prices as decimals (comma
--   decimals accepted). A product without id or category is rejected; an unreadable price is nulled
--   with the reason in value_issues.
-- owner: data-eng@bakery.example
-- grain: [product_id]
-- tests:
--   - {not_null: product_name, severity: warn}
--   - expression: {name: unit_price_not_negative, sql: "unit_price is null or unit_price >= 0"}
-- columns:
--   is_active: True unless the source says otherwise.
--   value_issues: Why a value of this record was nulled or defaulted, if it was.
with source as (
    select * from raw.products
),

cleaned as (
    select
        nullif(trim(product_id), '') as product_id,
        nullif(trim(product_name), '') as product_name,
        lower(nullif(trim(category), '')) as category,
        nullif(trim(unit_price), '') as unit_price_text,
        crm_decimal(unit_price) as unit_price,
        nullif(trim(is_active), '') as is_active_text,
        crm_bool(is_active) as is_active_flag,
        _source_file,
        _file_sha256,
        _row_number,
        _loaded_at,
        _parse_error
    from source
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when product_id is null then 'missing product_id'
            when category is null then 'missing category'
        end as _problem
    from cleaned
)

select
    product_id,
    product_name,
    category,
    case when unit_price >= 0 then unit_price end as unit_price,
    coalesce(is_active_flag, true) as is_active,
    nullif(concat_ws('; ',
        case
            when unit_price_text is not null and unit_price is null
                then 'unparseable unit_price (' || unit_price_text || ')'
            when unit_price < 0 then 'negative unit_price (' || unit_price_text || ')'
        end,
        case
            when is_active_text is not null and is_active_flag is null
                then 'unrecognised is_active (' || is_active_text || '), taken as true'
        end
    ), '') as value_issues,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

-- description: Stores of the chain, one row per store, with a canonical city and an IANA time zone.
-- owner: data-eng@bakery.example
-- grain: [store_id]
-- columns:
--   timezone: IANA zone that store-local timestamps are read in.
with source as (
    select * from raw.stores
),

cleaned as (
    select
        nullif(trim(store_id), '') as store_id,
        nullif(trim(store_name), '') as store_name,
        crm_city(city) as city,
        nullif(trim(timezone), '') as timezone,
        try_cast(nullif(trim(opened_on), '') as date) as opened_on,
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
            partition by store_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
)

select
    store_id,
    store_name,
    city,
    timezone,
    opened_on,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when store_id is null then 'missing store_id'
        when timezone is null then 'missing timezone'
        when _version_rank > 1 then 'superseded: store_id ' || store_id || ' loaded again later'
    end as _reject_reason
from ranked

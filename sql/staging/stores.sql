-- description: >
--   Stores of the chain, one row per store, with a canonical city and an IANA time zone. A store
--   whose zone is not a known IANA name is rejected: its local times could not be read.
-- owner: data-eng@bakery.example
-- grain: [store_id]
-- tests:
--   - {not_null: [store_name, city], severity: warn}
-- columns:
--   city: Canonical city name (aliases such as "СПб" or "Питер" mapped).
--   timezone: IANA zone that store-local timestamps are read in.
--   opened_on: ISO, dd.mm.yyyy or dd/mm/yyyy in the source.
--   value_issues: Why a value of this record was nulled ("unparseable opened_on (...)"), if any.
with source as (
    select * from raw.stores
),

cleaned as (
    select
        nullif(trim(store_id), '') as store_id,
        nullif(trim(store_name), '') as store_name,
        crm_city(city) as city,
        nullif(trim(timezone), '') as timezone,
        nullif(trim(opened_on), '') as opened_on_text,
        _source_file,
        _file_sha256,
        _row_number,
        _loaded_at,
        _parse_error
    from source
),

typed as (
    select
        *,
        try_cast('2000-01-01 00:00:00 ' || timezone as timestamptz) is not null
            as is_known_timezone,
        coalesce(
            try_cast(opened_on_text as date),
            cast(try_strptime(opened_on_text, ['%d.%m.%Y', '%d/%m/%Y']) as date)
        ) as opened_on
    from cleaned
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when store_id is null then 'missing store_id'
            when timezone is null then 'missing timezone'
            when not is_known_timezone then 'unknown time zone: ' || timezone
        end as _problem
    from typed
)

select
    store_id,
    store_name,
    city,
    timezone,
    opened_on,
    case
        when opened_on_text is not null and opened_on is null
            then 'unparseable opened_on (' || opened_on_text || ')'
    end as value_issues,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

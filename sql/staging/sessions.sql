-- description: Web and app sessions (anonymous ones keep a null customer).
-- owner: data-eng@bakery.example
-- grain: [session_id]
with source as (
    select * from raw.sessions
),

cleaned as (
    select
        nullif(trim(session_id), '') as session_id,
        nullif(trim(customer_id), '') as source_customer_id,
        lower(nullif(trim(device), '')) as device,
        try_cast(nullif(trim(started_at), '') as timestamptz) as started_at,
        try_cast(nullif(trim(duration_seconds), '') as integer) as duration_seconds,
        try_cast(nullif(trim(page_views), '') as integer) as page_views,
        lower(nullif(trim(utm_source), '')) as utm_source,
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
            partition by session_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
)

select
    session_id,
    source_customer_id,
    device,
    started_at,
    duration_seconds,
    page_views,
    utm_source,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when session_id is null then 'missing session_id'
        when started_at is null then 'missing or unparseable started_at'
        when _version_rank > 1 then 'superseded: session loaded again later'
    end as _reject_reason
from ranked

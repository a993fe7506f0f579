-- description: >
--   Web and app sessions; anonymous ones keep a null customer. Rejected with a reason: no id, no
--   readable started_at, a customer id that is not known. Unreadable or negative counts are nulled
--   with the reason in value_issues.
-- owner: data-eng@bakery.example
-- grain: [session_id]
-- references: {source_customer_id: staging.customers}
-- tests:
--   - not_null: started_at
--   - relationships: {column: source_customer_id, to: staging.customers}
--   - {accepted_values: {column: device, values: [web, ios, android]}, severity: warn}
-- columns:
--   started_at: Instant; ISO 8601 with a UTC offset in the source, a value without one is read in
--     the business time zone.
--   value_issues: Why a value of this record was nulled, if it was.
with source as (
    select * from raw.sessions
),

customers as (
    select source_customer_id from staging.customers
),

cleaned as (
    select
        nullif(trim(x.session_id), '') as session_id,
        nullif(trim(x.customer_id), '') as source_customer_id,
        c.source_customer_id is not null as is_known_customer,
        lower(nullif(trim(x.device), '')) as device,
        nullif(trim(x.started_at), '') as started_at_text,
        nullif(trim(x.duration_seconds), '') as duration_text,
        try_cast(nullif(trim(x.duration_seconds), '') as integer) as duration_seconds,
        nullif(trim(x.page_views), '') as page_views_text,
        try_cast(nullif(trim(x.page_views), '') as integer) as page_views,
        lower(nullif(trim(x.utm_source), '')) as utm_source,
        x._source_file,
        x._file_sha256,
        x._row_number,
        x._loaded_at,
        x._parse_error
    from source as x
    left join customers as c on c.source_customer_id = nullif(trim(x.customer_id), '')
),

timed as (
    select
        *,
        crm_instant(started_at_text, business_timezone()) as started_at
    from cleaned
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when session_id is null then 'missing session_id'
            when started_at_text is null then 'missing started_at'
            when started_at is null then 'unparseable started_at: ' || started_at_text
            when source_customer_id is not null and not is_known_customer
                then 'unknown customer: ' || source_customer_id
        end as _problem
    from timed
)

select
    session_id,
    source_customer_id,
    device,
    started_at,
    case when duration_seconds >= 0 then duration_seconds end as duration_seconds,
    case when page_views >= 0 then page_views end as page_views,
    utm_source,
    nullif(concat_ws('; ',
        case when duration_text is not null and coalesce(duration_seconds, -1) < 0
            then 'unusable duration_seconds (' || duration_text || ')' end,
        case when page_views_text is not null and coalesce(page_views, -1) < 0
            then 'unusable page_views (' || page_views_text || ')' end
    ), '') as value_issues,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

-- description: >
--   Marketing messages sent and the customers' responses, one row per interaction. Rejected with a
--   reason: no id, an unknown customer, no readable occurred_at, an unknown channel or type.
-- owner: data-eng@bakery.example
-- grain: [interaction_id]
-- references: {source_customer_id: staging.customers}
-- tests:
--   - not_null: [source_customer_id, occurred_at]
--   - accepted_values: {column: channel, values: [email, sms, push]}
--   - accepted_values: {column: interaction_type, values: [sent, opened, clicked, unsubscribed]}
--   - relationships: {column: source_customer_id, to: staging.customers}
-- columns:
--   occurred_at: Instant; ISO 8601 with a UTC offset in the source, a value without one is read in
--     the business time zone.
with source as (
    select * from raw.interactions
),

customers as (
    select source_customer_id from staging.customers
),

cleaned as (
    select
        nullif(trim(x.interaction_id), '') as interaction_id,
        nullif(trim(x.customer_id), '') as source_customer_id,
        c.source_customer_id is not null as is_known_customer,
        lower(nullif(trim(x.channel), '')) as channel,
        lower(nullif(trim(x.interaction_type), '')) as interaction_type,
        nullif(trim(x.campaign_id), '') as campaign_id,
        nullif(trim(x.occurred_at), '') as occurred_at_text,
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
        crm_instant(occurred_at_text, business_timezone()) as occurred_at
    from cleaned
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when interaction_id is null then 'missing interaction_id'
            when source_customer_id is null then 'missing customer_id'
            when not is_known_customer then 'unknown customer: ' || source_customer_id
            when occurred_at_text is null then 'missing occurred_at'
            when occurred_at is null then 'unparseable occurred_at: ' || occurred_at_text
            when channel is null or channel not in ('email', 'sms', 'push')
                then 'unknown channel: ' || coalesce(channel, '(empty)')
            when interaction_type is null
                or interaction_type not in ('sent', 'opened', 'clicked', 'unsubscribed')
                then 'unknown interaction_type: ' || coalesce(interaction_type, '(empty)')
        end as _problem
    from timed
)

select
    interaction_id,
    source_customer_id,
    channel,
    interaction_type,
    campaign_id,
    occurred_at,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

-- description: Marketing messages sent and the customers' responses, one row per interaction.
-- owner: data-eng@bakery.example
-- grain: [interaction_id]
-- tests:
--   - accepted_values: {column: channel, values: [email, sms, push]}
--   - accepted_values: {column: interaction_type, values: [sent, opened, clicked, unsubscribed]}
with source as (
    select * from raw.interactions
),

cleaned as (
    select
        nullif(trim(interaction_id), '') as interaction_id,
        nullif(trim(customer_id), '') as source_customer_id,
        lower(nullif(trim(channel), '')) as channel,
        lower(nullif(trim(interaction_type), '')) as interaction_type,
        nullif(trim(campaign_id), '') as campaign_id,
        try_cast(nullif(trim(occurred_at), '') as timestamptz) as occurred_at,
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
            partition by interaction_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
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
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when interaction_id is null then 'missing interaction_id'
        when source_customer_id is null then 'missing customer_id'
        when occurred_at is null then 'missing or unparseable occurred_at'
        when channel not in ('email', 'sms', 'push') then 'unknown channel: ' || channel
        when interaction_type not in ('sent', 'opened', 'clicked', 'unsubscribed')
            then 'unknown interaction_type: ' || interaction_type
        when _version_rank > 1 then 'superseded: interaction loaded again later'
    end as _reject_reason
from ranked

-- description: >
--   Orders with amounts as decimals (comma decimals accepted) and store-local times turned into
--   instants with the store's time zone. Negative amounts, unknown statuses and unparseable values
--   are rejected with a reason.
-- owner: data-eng@bakery.example
-- grain: [order_id]
-- tests:
--   - accepted_values: {column: status, values: [completed, cancelled, refunded]}
--   - accepted_values: {column: channel, values: [in_store, app, web, delivery]}
with source as (
    select * from raw.orders
),

stores as (
    select store_id, timezone from staging.stores
),

customers as (
    select source_customer_id from staging.customers
),

cleaned as (
    select
        nullif(trim(o.order_id), '') as order_id,
        nullif(trim(o.customer_id), '') as source_customer_id,
        nullif(trim(o.store_id), '') as store_id,
        try_cast(nullif(trim(o.ordered_at), '') as timestamp) as ordered_at_local,
        coalesce(s.timezone, business_timezone()) as store_timezone,
        lower(nullif(trim(o.channel), '')) as channel,
        lower(nullif(trim(o.status), '')) as status,
        crm_decimal(o.total_amount) as total_amount,
        c.source_customer_id is not null as is_known_customer,
        nullif(trim(o.total_amount), '') as total_amount_text,
        o._source_file,
        o._file_sha256,
        o._row_number,
        o._loaded_at,
        o._parse_error
    from source as o
    left join stores as s on s.store_id = nullif(trim(o.store_id), '')
    left join customers as c on c.source_customer_id = nullif(trim(o.customer_id), '')
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
)

select
    order_id,
    source_customer_id,
    store_id,
    timezone(store_timezone, ordered_at_local) as ordered_at,
    ordered_at_local,
    channel,
    status,
    total_amount,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when order_id is null then 'missing order_id'
        when ordered_at_local is null then 'missing or unparseable ordered_at'
        when source_customer_id is not null and not is_known_customer
            then 'unknown customer: ' || source_customer_id
        when total_amount_text is not null and total_amount is null
            then 'unparseable total_amount: ' || total_amount_text
        when total_amount < 0 then 'negative total_amount: ' || total_amount_text
        when status is not null and status not in ('completed', 'cancelled', 'refunded')
            then 'unknown status: ' || status
        when _version_rank > 1 then 'superseded: order_id ' || order_id || ' loaded again later'
    end as _reject_reason
from ranked

-- description: >
--   Orders with amounts as decimals (comma decimals accepted) and store-local times turned into
--   instants with the store's time zone. Rejected with a reason: no order_id, no readable
--   ordered_at or one before earliest_plausible_date() or after its file was loaded, an unknown
--   store or customer (guests have no customer), an unreadable or negative amount, an unknown
--   status. An order without status is completed.
-- owner: data-eng@bakery.example
-- grain: [order_id]
-- references: {store_id: staging.stores, source_customer_id: staging.customers}
-- tests:
--   - not_null: ordered_at
--   - accepted_values: {column: status, values: [completed, cancelled, refunded]}
--   - accepted_values: {column: channel, values: [in_store, app, web, delivery]}
--   - relationships: {column: store_id, to: staging.stores, field: store_id}
--   - relationships: {column: source_customer_id, to: staging.customers}
--   - expression: {name: total_amount_not_negative, sql: "total_amount is null or total_amount >= 0"}
-- columns:
--   source_customer_id: The source system's customer id; null for a guest.
--   ordered_at: Instant, read in the store's zone (business zone without a store); a value with a
--     UTC offset is taken as is.
--   ordered_at_local: The wall-clock time at the store.
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
        s.store_id is not null as is_known_store,
        coalesce(s.timezone, business_timezone()) as store_timezone,
        nullif(trim(o.ordered_at), '') as ordered_at_text,
        lower(nullif(trim(o.channel), '')) as channel,
        -- no status (the column absent or the value empty): a completed purchase
        coalesce(lower(nullif(trim(o.status), '')), 'completed') as status,
        crm_decimal(o.total_amount) as total_amount,
        nullif(trim(o.total_amount), '') as total_amount_text,
        c.source_customer_id is not null as is_known_customer,
        o._source_file,
        o._file_sha256,
        o._row_number,
        o._loaded_at,
        o._parse_error
    from source as o
    left join stores as s on s.store_id = nullif(trim(o.store_id), '')
    left join customers as c on c.source_customer_id = nullif(trim(o.customer_id), '')
),

timed as (
    -- store-local wall-clock text to an instant; a value carrying a UTC offset is taken as is
    select
        *,
        crm_instant(ordered_at_text, store_timezone) as ordered_at
    from cleaned
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when order_id is null then 'missing order_id'
            when ordered_at_text is null then 'missing ordered_at'
            when ordered_at is null then 'unparseable ordered_at: ' || ordered_at_text
            when ordered_at < earliest_plausible_date()
                then 'implausible ordered_at (before earliest_plausible_date '
                    || earliest_plausible_date() || '): ' || ordered_at_text
            when ordered_at > latest_plausible(_loaded_at)
                then 'implausible ordered_at (after its file was loaded): ' || ordered_at_text
            when store_id is not null and not is_known_store then 'unknown store: ' || store_id
            when source_customer_id is not null and not is_known_customer
                then 'unknown customer: ' || source_customer_id
            when total_amount_text is not null and total_amount is null
                then 'unparseable total_amount: ' || total_amount_text
            when total_amount < 0 then 'negative total_amount: ' || total_amount_text
            when status is not null and status not in ('completed', 'cancelled', 'refunded')
                then 'unknown status: ' || status
        end as _problem
    from timed
)

select
    order_id,
    source_customer_id,
    store_id,
    ordered_at,
    cast(timezone(store_timezone, ordered_at) as timestamp) as ordered_at_local,
    channel,
    status,
    total_amount,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

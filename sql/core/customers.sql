-- description: >
--   Golden record: one row per person (customer_id), merged from all their source records.
--   Survivorship: first and last name are taken together, as the pair most of the person's records
--   agree on (ties: the earliest registered record), so a record with the names swapped or one of
--   them missing cannot produce a mixed name; every other attribute is the most recent non-null
--   value (by updated_at, then load time, then source id); a consent flag is the most recent explicit choice, so an opt-out is never
--   overwritten by an older opt-in (equal times: the opt-out wins); registered_at is the earliest
--   registration, updated_at the latest update.
-- owner: data-eng@bakery.example
-- grain: [customer_id]
-- incremental:
--   from: core.customer_identity
--   via: {staging.customers: source_customer_id}
--   removed: meta.customer_merges.from_customer_id
-- tests:
--   - {not_null: [registered_at], severity: warn}
-- columns:
--   source_record_count: How many source records were merged into this person.
with records as (
    select
        ci.customer_id,
        s.*,
        row_number() over (partition by ci.customer_id order by updated_at desc nulls last, _loaded_at desc nulls last, source_customer_id) as recency,
        row_number() over (partition by customer_id order by email_opt_in is null, updated_at desc nulls last, email_opt_in, _loaded_at desc nulls last, source_customer_id) as email_opt_in_rank,
        row_number() over (partition by customer_id order by sms_opt_in is null, updated_at desc nulls last, sms_opt_in, _loaded_at desc nulls last, source_customer_id) as sms_opt_in_rank,
        row_number() over (partition by customer_id order by push_opt_in is null, updated_at desc nulls last, push_opt_in, _loaded_at desc nulls last, source_customer_id) as push_opt_in_rank
    from staging.customers as s
    inner join core.customer_identity as ci using (source_customer_id)
),

name_votes as (
    select
        customer_id,
        first_name,
        last_name,
        row_number() over (
            partition by customer_id
            order by count(*) desc, min(registered_at) nulls last, min(source_customer_id)
        ) as name_rank
    from records
    where first_name is not null and last_name is not null
    group by customer_id, first_name, last_name
),

golden as (

select
    customer_id,
    arg_min(first_name, recency) filter (where first_name is not null) as first_name,
    arg_min(last_name, recency) filter (where last_name is not null) as last_name,
    arg_min(name_key, recency) filter (where name_key is not null) as name_key,
    arg_min(email, recency) filter (where email is not null) as email,
    arg_min(phone, recency) filter (where phone is not null) as phone,
    arg_min(gender, recency) filter (where gender is not null) as gender,
    arg_min(birth_date, recency) filter (where birth_date is not null) as birth_date,
    arg_min(city, recency) filter (where city is not null) as city,
    arg_min(home_store_id, recency) filter (where home_store_id is not null) as home_store_id,
    min(registered_at) as registered_at,
    any_value(email_opt_in) filter (where email_opt_in_rank = 1) as email_opt_in,
    any_value(sms_opt_in) filter (where sms_opt_in_rank = 1) as sms_opt_in,
    any_value(push_opt_in) filter (where push_opt_in_rank = 1) as push_opt_in,
    max(updated_at) as updated_at,
    count(*) as source_record_count
from records
group by customer_id
)

select
    g.customer_id,
    coalesce(n.first_name, g.first_name) as first_name,
    coalesce(n.last_name, g.last_name) as last_name,
    g.* exclude (customer_id, first_name, last_name)
from golden as g
left join name_votes as n on n.customer_id = g.customer_id and n.name_rank = 1
order by g.customer_id

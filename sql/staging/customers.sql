-- description: >
--   Customer records as the CRM holds them (one person may still appear several times), typed and
--   normalised: e-mails lower-cased and syntax-checked, phones in E.164, placeholders nulled, a name
--   key that ignores case, ё/е and name order, canonical cities, store-local times as instants.
-- owner: data-eng@bakery.example
-- grain: [source_customer_id]
-- columns:
--   email_key: Matching key (gmail dots and +tags removed).
--   name_key: Lower-case letters of first and last name, ё folded to е, tokens sorted.
--   registered_at: Instant, read in the home store's time zone (business zone if unknown).
--   contact_issues: Why an e-mail, phone or birth date was nulled, if it was.
with source as (
    select * from raw.customers
),

stores as (
    select store_id, timezone from staging.stores
),

cleaned as (
    select
        nullif(trim(c.customer_id), '') as source_customer_id,
        nullif(trim(c.first_name), '') as first_name,
        nullif(trim(c.last_name), '') as last_name,
        crm_name_key(c.first_name, c.last_name) as name_key,
        crm_email(c.email) as email,
        crm_email_key(c.email) as email_key,
        crm_phone(c.phone) as phone,
        crm_gender(c.gender) as gender,
        crm_birth_date(c.birth_date) as birth_date,
        crm_city(c.city) as city,
        nullif(trim(c.home_store_id), '') as home_store_id,
        timezone(
            coalesce(s.timezone, business_timezone()),
            try_cast(nullif(trim(c.registered_at), '') as timestamp)
        ) as registered_at,
        crm_bool(c.email_opt_in) as email_opt_in,
        crm_bool(c.sms_opt_in) as sms_opt_in,
        crm_bool(c.push_opt_in) as push_opt_in,
        timezone(
            coalesce(s.timezone, business_timezone()),
            try_cast(nullif(trim(c.updated_at), '') as timestamp)
        ) as updated_at,
        concat_ws('; ',
            crm_email_issue(c.email),
            crm_phone_issue(c.phone),
            crm_birth_date_issue(c.birth_date)
        ) as contact_issues,
        nullif(trim(c.registered_at), '') is not null
            and try_cast(nullif(trim(c.registered_at), '') as timestamp) is null
            as bad_registered_at,
        c._source_file,
        c._file_sha256,
        c._row_number,
        c._loaded_at,
        c._parse_error
    from source as c
    left join stores as s on s.store_id = nullif(trim(c.home_store_id), '')
),

ranked as (
    select
        *,
        row_number() over (
            partition by source_customer_id order by _loaded_at desc, _row_number desc
        ) as _version_rank
    from cleaned
)

select
    source_customer_id,
    first_name,
    last_name,
    name_key,
    email,
    email_key,
    phone,
    gender,
    birth_date,
    city,
    home_store_id,
    registered_at,
    email_opt_in,
    sms_opt_in,
    push_opt_in,
    updated_at,
    nullif(contact_issues, '') as contact_issues,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    case
        when _parse_error is not null then 'malformed record: ' || _parse_error
        when source_customer_id is null then 'missing customer_id'
        when bad_registered_at then 'unparseable registered_at'
        when _version_rank > 1
            then 'superseded: customer_id ' || source_customer_id || ' loaded again later'
    end as _reject_reason
from ranked

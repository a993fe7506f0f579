-- description: >
--   Customer records as the CRM holds them (one person may still appear several times), typed and
--   normalised: e-mails lower-cased and syntax-checked, phones in E.164, placeholders nulled, a name
--   key that ignores case, ё/е and name order, gender as male/female, birth dates from ISO,
--   dd.mm.yyyy or dd/mm/yy, canonical cities, store-local times as instants. A value that cannot be
--   used is nulled and the reason kept in value_issues; a record without customer_id is rejected;
--   of several versions of one customer_id the latest loaded wins.
-- owner: data-eng@bakery.example
-- grain: [source_customer_id]
-- references: {home_store_id: staging.stores}
-- tests:
--   - accepted_values: {column: gender, values: [male, female]}
--   - expression: {name: email_normalised, sql: "email is null or email = lower(trim(email))"}
--   - expression: {name: phone_e164, sql: "phone is null or regexp_full_match(phone, '[+][1-9][0-9]{6,14}')"}
--   - {relationships: {column: home_store_id, to: staging.stores, field: store_id}, severity: warn}
-- columns:
--   email_key: Matching key (gmail dots and +tags removed).
--   name_key: Lower-case letters of first and last name, ё folded to е, tokens sorted.
--   gender: male or female; anything else is nulled (value_issues says what it was).
--   birth_date: Null when unparseable or impossible (before 1900, in the future).
--   registered_at: Instant, read in the home store's time zone (business zone if unknown); a value
--     with a UTC offset is taken as is.
--   value_issues: >
--     Why a value of this record was nulled, '; '-separated, each with the source text, e.g.
--     "placeholder email (test@test.ru); impossible birth date (31.02.1990)".
with source as (
    select * from raw.customers
),

stores as (
    select store_id, timezone from staging.stores
),

emails as (
    -- each distinct e-mail as written, checked once by email-validator
    select raw_value, email, email_key, issue from staging.email_addresses
),

phones as (
    -- each distinct phone as written, read once by phonenumbers
    select raw_value, phone, issue from staging.phone_numbers
),

cleaned as (
    select
        nullif(trim(c.customer_id), '') as source_customer_id,
        nullif(trim(c.first_name), '') as first_name,
        nullif(trim(c.last_name), '') as last_name,
        crm_name_key(c.first_name, c.last_name) as name_key,
        nullif(trim(c.email), '') as email_text,
        e.email,
        e.email_key,
        e.issue as email_issue,
        nullif(trim(c.phone), '') as phone_text,
        p.phone,
        p.issue as phone_issue,
        nullif(trim(c.gender), '') as gender_text,
        crm_gender(c.gender) as gender,
        nullif(trim(c.birth_date), '') as birth_date_text,
        crm_birth_date(c.birth_date) as birth_date,
        crm_birth_date_issue(c.birth_date) as birth_date_issue,
        crm_city(c.city) as city,
        nullif(trim(c.home_store_id), '') as home_store_id,
        coalesce(s.timezone, business_timezone()) as local_timezone,
        nullif(trim(c.registered_at), '') as registered_at_text,
        nullif(trim(c.updated_at), '') as updated_at_text,
        nullif(trim(c.email_opt_in), '') as email_opt_in_text,
        nullif(trim(c.sms_opt_in), '') as sms_opt_in_text,
        nullif(trim(c.push_opt_in), '') as push_opt_in_text,
        crm_bool(c.email_opt_in) as email_opt_in,
        crm_bool(c.sms_opt_in) as sms_opt_in,
        crm_bool(c.push_opt_in) as push_opt_in,
        c._source_file,
        c._file_sha256,
        c._row_number,
        c._loaded_at,
        c._parse_error
    from source as c
    left join stores as s on s.store_id = nullif(trim(c.home_store_id), '')
    left join emails as e on e.raw_value = c.email
    left join phones as p on p.raw_value = c.phone
),

timed as (
    -- store-local wall-clock text to an instant; a value carrying a UTC offset is taken as is
    select
        *,
        crm_instant(registered_at_text, local_timezone) as registered_at_parsed,
        crm_instant(updated_at_text, local_timezone) as updated_at_parsed
    from cleaned
),

judged as (
    select
        *,
        case
            when _parse_error is not null then 'malformed record: ' || _parse_error
            when source_customer_id is null then 'missing customer_id'
        end as _problem,
        -- before earliest_plausible_date() is a placeholder (1900-01-01, the 1970 epoch), not a
        -- registration; after latest_plausible() (its file's load plus a day, for clocks) it is
        -- a typo (2099-12-31) that would otherwise win every "latest value" rule
        case when registered_at_parsed >= earliest_plausible_date()
                  and registered_at_parsed <= latest_plausible(_loaded_at)
            then registered_at_parsed end as registered_at,
        case when updated_at_parsed >= earliest_plausible_date()
                  and updated_at_parsed <= latest_plausible(_loaded_at)
            then updated_at_parsed end as updated_at
    from timed
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
    nullif(concat_ws('; ',
        email_issue || ' (' || email_text || ')',
        phone_issue || ' (' || phone_text || ')',
        case when gender_text is not null and gender is null
            then 'unrecognised gender (' || gender_text || ')' end,
        birth_date_issue || ' (' || birth_date_text || ')',
        case
            when registered_at_text is not null and registered_at_parsed is null
                then 'unparseable registered_at (' || registered_at_text || ')'
            when registered_at_parsed > latest_plausible(_loaded_at)
                then 'registered_at after its file was loaded (' || registered_at_text || ')'
            when registered_at_parsed is not null and registered_at is null
                then 'placeholder registered_at (' || registered_at_text || ')'
        end,
        case
            when updated_at_text is not null and updated_at_parsed is null
                then 'unparseable updated_at (' || updated_at_text || ')'
            when updated_at_parsed > latest_plausible(_loaded_at)
                then 'updated_at after its file was loaded (' || updated_at_text || ')'
            when updated_at_parsed is not null and updated_at is null
                then 'placeholder updated_at (' || updated_at_text || ')'
        end,
        case when email_opt_in_text is not null and email_opt_in is null
            then 'unrecognised email_opt_in (' || email_opt_in_text || ')' end,
        case when sms_opt_in_text is not null and sms_opt_in is null
            then 'unrecognised sms_opt_in (' || sms_opt_in_text || ')' end,
        case when push_opt_in_text is not null and push_opt_in is null
            then 'unrecognised push_opt_in (' || push_opt_in_text || ')' end
    ), '') as value_issues,
    _source_file,
    _file_sha256,
    _row_number,
    _loaded_at,
    _problem
from judged

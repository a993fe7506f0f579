-- description: >
--   Each buyer's purchases up to the end of the as-of day, summarised as the "buy till you die"
--   models take them (BG/NBD, Gamma-Gamma; Fader, Hardie & Lee 2005): repeat purchase days,
--   recency and age in weeks, mean spend of the repeat purchase days. The input of the model fit
--   (meta.clv_models, as of its calibration end) and of core.customer_predictions.
-- owner: data-eng@bakery.example
-- grain: [customer_id]
-- tests:
--   - expression: {name: recency_within_age, sql: "frequency >= 0 and recency_weeks >= 0 and recency_weeks <= age_weeks"}
--   - expression: {name: repeat_spend_only_for_repeat_buyers, sql: "(frequency = 0) = (mean_repeat_spend is null)"}
-- columns:
--   purchase_days: Days (business time zone) with at least one completed order; several orders
--     on one day are one purchase, as the papers count them.
--   frequency: Repeat purchase days, purchase_days - 1 (the papers' x).
--   recency_weeks: Weeks from the first to the last purchase day (t_x); 0 for one purchase.
--   age_weeks: Weeks from the first purchase day to the as-of day (T).
--   mean_repeat_spend: Mean amount of a repeat purchase day (the first day left out, as
--     Gamma-Gamma requires); null without repeat purchases.
with purchase_days as (
    select
        customer_id,
        -- the session's time zone is the business's: a cast to date is a business day
        cast(ordered_at as date) as purchase_date,
        sum(total_amount) as spend
    from core.orders
    where status = 'completed'
        and customer_id is not null
        and ordered_at < as_of_end()
    group by customer_id, cast(ordered_at as date)
),

first_days as (
    select customer_id, min(purchase_date) as first_purchase_date
    from purchase_days
    group by customer_id
),

buyers as (
    select
        p.customer_id,
        f.first_purchase_date,
        max(p.purchase_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(p.spend) as total_spend,
        avg(p.spend) filter (where p.purchase_date > f.first_purchase_date) as mean_repeat_spend
    from purchase_days as p
    inner join first_days as f on f.customer_id = p.customer_id
    group by p.customer_id, f.first_purchase_date
)

select
    customer_id,
    first_purchase_date,
    last_purchase_date,
    purchase_days,
    purchase_days - 1 as frequency,
    date_diff('day', first_purchase_date, last_purchase_date) / 7.0 as recency_weeks,
    date_diff('day', first_purchase_date, as_of_date()) / 7.0 as age_weeks,
    mean_repeat_spend,
    total_spend
from buyers

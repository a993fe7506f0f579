-- description: >
--   Who is still a customer, how many purchase days to expect and what they are worth, per buyer,
--   as of the as-of day: BG/NBD (P(alive), expected purchases) and Gamma-Gamma (spend per
--   purchase) scores with the parameters of the latest model fitted on data up to that day
--   (meta.clv_models; `crm clv fit`, weekly). Empty until a model is fitted.
-- owner: data-eng@bakery.example
-- tags: [predictive]
-- grain: [customer_id]
-- tests:
--   - expression: {name: p_alive_is_a_probability, sql: "p_alive between 0 and 1"}
--   - expression: {name: expectations_not_negative, sql: "expected_purchases_30d >= 0 and expected_purchases_90d >= expected_purchases_30d and (clv_12m is null or clv_12m >= 0)"}
-- columns:
--   p_alive: Probability the person is still a customer (has not silently left); 1 after one
--     purchase, by the model's definition.
--   expected_purchases_30d: Purchase days expected in the next 30 days.
--   expected_purchases_90d: Purchase days expected in the next 90 days.
--   expected_spend: Expected amount of one purchase day (Gamma-Gamma, the person's mean repeat
--     spend shrunk toward the population's); the population's for one-time buyers.
--   clv_12m: Expected spend over the next 12 months (30-day months), each month discounted at
--     the model's monthly_discount_rate.
--   model_version: The meta.clv_models row whose parameters scored this row.
with model as (
    select *
    from meta.clv_models
    where calibration_end <= as_of_date()
    qualify row_number() over (order by calibration_end desc, fitted_at desc) = 1
),

summary as (
    select * from core.customer_purchase_summary
),

-- the BG/NBD scores depend on (x, t_x, T) only: each distinct history scored once (about half
-- as many as buyers)
histories as (
    select distinct frequency, recency_weeks, age_weeks from summary
),

history_scores as (
    select
        h.frequency,
        h.recency_weeks,
        h.age_weeks,
        bgnbd_p_alive(m.r, m.alpha, m.a, m.b, h.frequency, h.recency_weeks, h.age_weeks)
            as p_alive,
        bgnbd_expected_purchases(m.r, m.alpha, m.a, m.b, 30 / 7.0,
                                 h.frequency, h.recency_weeks, h.age_weeks)
            as expected_purchases_30d,
        bgnbd_expected_purchases(m.r, m.alpha, m.a, m.b, 90 / 7.0,
                                 h.frequency, h.recency_weeks, h.age_weeks)
            as expected_purchases_90d,
        bgnbd_discounted_purchases(m.r, m.alpha, m.a, m.b, 12, m.monthly_discount_rate,
                                   h.frequency, h.recency_weeks, h.age_weeks)
            as discounted_purchases_12m
    from histories as h
    cross join model as m
),

scored as (
    select
        s.customer_id,
        h.p_alive,
        h.expected_purchases_30d,
        h.expected_purchases_90d,
        gamma_gamma_expected_spend(m.p, m.q, m.gamma, s.frequency, s.mean_repeat_spend)
            as expected_spend,
        h.discounted_purchases_12m,
        m.model_version
    from summary as s
    cross join model as m
    inner join history_scores as h
        on h.frequency = s.frequency and h.recency_weeks = s.recency_weeks
        and h.age_weeks = s.age_weeks
)

select
    customer_id,
    p_alive,
    expected_purchases_30d,
    expected_purchases_90d,
    expected_spend,
    expected_spend * discounted_purchases_12m as clv_12m,
    model_version,
    as_of_date() as as_of_date
from scored

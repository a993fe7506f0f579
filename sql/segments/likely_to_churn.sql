-- description: >
--   Predictive segment (churn): valuable customers who have probably left. Repeat buyers (3 or
--   more purchase days) in the top half of buyers by spend whose P(alive) under the latest
--   customer-base model is below 0.5 (core.customer_predictions). Win-back target. This is the
--   catalogue's one notion of churn; it replaces the heuristic churn_risk.
-- owner: growth@bakery.example
-- tags: [predictive, lifecycle]
-- grain: [customer_id]
with buyers as (
    select
        s.customer_id,
        s.frequency,
        s.total_spend,
        s.last_purchase_date,
        p.p_alive,
        p.clv_12m,
        percent_rank() over (order by s.total_spend) as spend_rank
    from core.customer_purchase_summary as s
    inner join core.customer_predictions as p on p.customer_id = s.customer_id
)

select
    customer_id,
    p_alive,
    frequency,
    total_spend,
    last_purchase_date
from buyers
where frequency >= 2
    and spend_rank >= 0.5
    and p_alive < 0.5

-- description: >
--   Predictive segment (value): the tenth of buyers with the highest expected spend over the
--   next 12 months (core.customer_predictions.clv_12m, discounted), as of the as-of day.
-- owner: growth@bakery.example
-- tags: [predictive, transactional]
-- grain: [customer_id]
with ranked as (
    select
        customer_id,
        clv_12m,
        expected_purchases_90d,
        expected_spend,
        percent_rank() over (order by clv_12m) as clv_rank
    from core.customer_predictions
    where clv_12m is not null
)

select
    customer_id,
    clv_12m,
    expected_purchases_90d,
    expected_spend
from ranked
where clv_rank >= 0.9

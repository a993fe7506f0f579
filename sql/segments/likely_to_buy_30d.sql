-- description: >
--   Predictive segment (repurchase): customers the latest customer-base model expects to buy on
--   at least one day in the next 30 days (core.customer_predictions.expected_purchases_30d >= 1)
--   and who are probably still customers (P(alive) at least 0.5).
-- owner: growth@bakery.example
-- tags: [predictive, transactional]
-- grain: [customer_id]
select
    customer_id,
    expected_purchases_30d,
    p_alive
from core.customer_predictions
where expected_purchases_30d >= 1
    and p_alive >= 0.5

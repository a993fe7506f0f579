-- description: >
--   Predictive segment: regular customers (3+ orders) whose next order is well overdue against
--   their own usual rhythm (churn_risk >= 0.5) but who have not lapsed yet. Win-back target.
-- owner: growth@bakery.example
-- tags: [predictive, lifecycle]
-- grain: [customer_id]
select
    customer_id,
    churn_risk,
    recency_days,
    avg_days_between_orders,
    is_email_reachable
from core.customer_features
where orders_total >= 3
    and churn_risk >= 0.5
    and lifecycle_stage <> 'lapsed'

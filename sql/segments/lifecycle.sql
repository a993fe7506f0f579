-- description: >
--   System segment (lifecycle), one per stage of core.customer_features.lifecycle_stage, one rule
--   with its thresholds in [tool.crm.lifecycle]: prospect (never bought), new (first order within
--   30 days), active (last order within 60 days, or three of the person's usual gaps), at_risk (in
--   between), lapsed (nothing bought for more than 180 days).
-- owner: growth@bakery.example
-- tags: [system, lifecycle]
-- grain: [customer_id]
-- variants: [prospect, new, active, at_risk, lapsed]
select
    customer_id,
    first_order_at,
    last_order_at,
    recency_days,
    orders_total
from core.customer_features
where lifecycle_stage = param('variant')

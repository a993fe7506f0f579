-- description: >
--   System segment (value), one per tier: the buyers of the last 365 days ranked by what they
--   spent in them; top 5 % platinum, next 15 % gold, next 30 % silver, the other half bronze
--   (by percent rank, so equal spend is always in the same tier).
-- owner: growth@bakery.example
-- tags: [system, transactional]
-- grain: [customer_id]
-- columns:
--   spend_rank: Share of buyers who spent less (0 = least, near 1 = most).
-- variants:
--   platinum: {from_rank: 0.95, to_rank: 1.01}
--   gold: {from_rank: 0.80, to_rank: 0.95}
--   silver: {from_rank: 0.50, to_rank: 0.80}
--   bronze: {from_rank: 0.0, to_rank: 0.50}
with ranked as (
    select
        customer_id,
        revenue_365d,
        orders_365d,
        percent_rank() over (order by revenue_365d) as spend_rank
    from core.customer_features
    where orders_365d > 0
)

select customer_id, revenue_365d, orders_365d, spend_rank
from ranked
where spend_rank >= param('from_rank') and spend_rank < param('to_rank')

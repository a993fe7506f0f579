-- description: >
--   System segment (RFM): bought recently, often and for a lot in the last 365 days (recency,
--   frequency and monetary quintiles all 4 or 5).
-- owner: growth@bakery.example
-- tags: [system, rfm, transactional]
-- grain: [customer_id]
select
    customer_id,
    rfm_recency,
    rfm_frequency,
    rfm_monetary,
    revenue_365d
from core.customer_features
where rfm_recency >= 4
    and rfm_frequency >= 4
    and rfm_monetary >= 4

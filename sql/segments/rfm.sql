-- description: >
--   System segment (RFM), one per named segment of the RFM map: the buyers of the last 365 days
--   whose recency, frequency and monetary scores put them in it (core.customer_rfm;
--   the ranges are in seeds/reference/rfm_segment_map.csv). segments.rfm_at_risk is At Risk.
-- owner: growth@bakery.example
-- tags: [system, rfm, transactional]
-- grain: [customer_id]
-- variants: [champions, loyal, potential_loyalist, new, promising, need_attention, about_to_sleep,
--            at_risk, cant_lose_them, hibernating, lost]
select
    customer_id,
    rfm_recency,
    rfm_frequency,
    rfm_monetary,
    rfm_cell,
    revenue_365d
from core.customer_rfm
where rfm_segment = param('variant')

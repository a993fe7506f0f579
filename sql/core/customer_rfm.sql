-- description: >
--   RFM of every person who bought in the 365 days up to the as-of date: the recency, frequency
--   and monetary scores of core.customer_features (1-5, quintiles among those buyers) and the
--   named segment their (R, F, M) falls in by the map core.rfm_segment_map
--   (seeds/reference/rfm_segment_map.csv). People with no purchase in those 365 days have no RFM.
-- owner: growth@bakery.example
-- tags: [system, rfm, transactional]
-- grain: [customer_id]
-- columns:
--   rfm_segment: The named segment (champions, loyal, potential_loyalist, new, promising,
--     need_attention, about_to_sleep, at_risk, cant_lose_them, hibernating, lost).
--   rfm_segment_label: Its name as marketers say it (Champions, Can't Lose Them, ...).
--   rfm_cell: The three scores as one code, R then F then M ('545').
-- tests:
--   - not_null: rfm_segment
select
    f.customer_id,
    cast(f.rfm_recency as integer) as rfm_recency,
    cast(f.rfm_frequency as integer) as rfm_frequency,
    cast(f.rfm_monetary as integer) as rfm_monetary,
    concat(
        cast(f.rfm_recency as integer),
        cast(f.rfm_frequency as integer),
        cast(f.rfm_monetary as integer)
    ) as rfm_cell,
    m.rfm_segment,
    m.label as rfm_segment_label,
    f.recency_days,
    f.orders_365d,
    f.revenue_365d
from core.customer_features as f
left join core.rfm_segment_map as m
    on f.rfm_recency between m.recency_min and m.recency_max
    and f.rfm_frequency between m.frequency_min and m.frequency_max
    and f.rfm_monetary between m.monetary_min and m.monetary_max
where f.rfm_recency > 0

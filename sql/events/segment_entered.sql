-- description: >
--   Every entry into a segment: one row per person, segment and day they became a member (from
--   marts.segment_membership_history), at the start of that business day, so a chain can start on
--   "entered rfm_at_risk" (crm events segment_entered, the segment_changes macro). The members of a
--   segment's first computed day are its starting population, not entries: a new segment does not
--   fire for everyone in it. `crm segment-history` moves that first day back.
-- owner: growth@bakery.example
-- tags: [lifecycle]
-- grain: [segment, customer_id, occurred_at]
-- columns:
--   segment: The segment entered (its table name in the segments layer).
--   occurred_at: The start of the business day of the first as-of date they were a member.
--   segment_version: The version of the segment definition that made them a member.
with first_days as (
    select segment, min(valid_from) as first_day
    from marts.segment_membership_history
    group by segment
)

select
    h.customer_id,
    -- midnight of the day in the business time zone (the session's)
    cast(h.valid_from as timestamptz) as occurred_at,
    h.segment,
    h.definition_version as segment_version
from marts.segment_membership_history as h
inner join first_days as f on f.segment = h.segment
where h.valid_from > f.first_day

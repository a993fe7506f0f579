-- description: >
--   Every entry into a segment: one row per person, segment and day they became a member (from
--   marts.segment_membership_history), at the start of that business day, so a trigger chain can
--   start on "entered rfm_at_risk". The first day a segment is computed, all its members enter;
--   `crm segment-history` fills in the days before.
-- owner: growth@bakery.example
-- tags: [lifecycle, trigger]
-- grain: [segment, customer_id, occurred_at]
-- columns:
--   segment: The segment entered (its table name in the segments layer).
--   occurred_at: The start of the business day of the first as-of date they were a member.
--   segment_version: The version of the segment definition that made them a member.
select
    customer_id,
    -- midnight of the day in the business time zone (the session's)
    cast(valid_from as timestamptz) as occurred_at,
    segment,
    definition_version as segment_version
from marts.segment_membership_history

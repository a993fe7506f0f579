-- description: >
--   Every exit from a segment: one row per person, segment and day they stopped being a member
--   (from marts.segment_membership_history: the day their membership's valid_to names), at the
--   start of that business day.
-- owner: growth@bakery.example
-- tags: [lifecycle]
-- grain: [segment, customer_id, occurred_at]
-- columns:
--   segment: The segment left (its table name in the segments layer).
--   occurred_at: The start of the business day of the first as-of date they were no longer one.
--   segment_version: The version of the segment definition of the membership that ended.
select
    customer_id,
    -- midnight of the day in the business time zone (the session's)
    cast(valid_to as timestamptz) as occurred_at,
    segment,
    definition_version as segment_version
from marts.segment_membership_history
where valid_to is not null

-- description: >
--   For every pair of segments, how many customers are currently in both (and each segment's size),
--   from the open rows of the membership history.
-- owner: growth@bakery.example
-- grain: [segment_a, segment_b]
with current_members as (
    select segment, customer_id
    from marts.segment_membership_history
    where valid_to is null
),

sizes as (
    select segment, count(*) as members
    from current_members
    group by segment
)

select
    a.segment as segment_a,
    b.segment as segment_b,
    count(*) as customers_in_both,
    max(sa.members) as segment_a_members,
    max(sb.members) as segment_b_members,
    round(cast(count(*) as decimal(18, 6)) / max(sa.members), 4) as share_of_a
from current_members as a
inner join current_members as b
    on a.customer_id = b.customer_id and a.segment <> b.segment
inner join sizes as sa on sa.segment = a.segment
inner join sizes as sb on sb.segment = b.segment
group by a.segment, b.segment
order by a.segment, b.segment

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
),

-- each segment one bit of a person's combination of segments: bit n % 62 of word n / 62, eight
-- 62-bit words (496 segments); any further segment is counted by the join below
segment_bits as (
    select
        segment,
        cast(floor(n / 62) as integer) as word,
        cast(1 as bigint) << cast(n % 62 as integer) as bit
    from (select segment, row_number() over (order by segment) - 1 as n from sizes) as numbered
),

-- people counted per combination of segments they are in at once: the pairs come from the
-- combinations (a few thousand), not from joining every member with every other segment
combinations as (
    select w0, w1, w2, w3, w4, w5, w6, w7, count(*) as people
    from (
        select
            m.customer_id,
            coalesce(bit_or(s.bit) filter (where s.word = 0), 0) as w0,
            coalesce(bit_or(s.bit) filter (where s.word = 1), 0) as w1,
            coalesce(bit_or(s.bit) filter (where s.word = 2), 0) as w2,
            coalesce(bit_or(s.bit) filter (where s.word = 3), 0) as w3,
            coalesce(bit_or(s.bit) filter (where s.word = 4), 0) as w4,
            coalesce(bit_or(s.bit) filter (where s.word = 5), 0) as w5,
            coalesce(bit_or(s.bit) filter (where s.word = 6), 0) as w6,
            coalesce(bit_or(s.bit) filter (where s.word = 7), 0) as w7
        from current_members as m
        inner join segment_bits as s on s.segment = m.segment
        group by m.customer_id
    ) as per_person
    group by w0, w1, w2, w3, w4, w5, w6, w7
),

combination_segments as (
    select c.*, s.segment
    from combinations as c
    inner join segment_bits as s
        on (case s.word
            when 0 then c.w0 when 1 then c.w1 when 2 then c.w2 when 3 then c.w3
            when 4 then c.w4 when 5 then c.w5 when 6 then c.w6 when 7 then c.w7
        end) & s.bit <> 0
),

pairs as (
    select a.segment as segment_a, b.segment as segment_b, a.people
    from combination_segments as a
    inner join combination_segments as b
        on a.w0 = b.w0 and a.w1 = b.w1 and a.w2 = b.w2 and a.w3 = b.w3
        and a.w4 = b.w4 and a.w5 = b.w5 and a.w6 = b.w6 and a.w7 = b.w7
        and a.segment <> b.segment
    union all
    -- segments past the 496th: member by member
    select a.segment, b.segment, 1
    from current_members as a
    inner join current_members as b on a.customer_id = b.customer_id and a.segment <> b.segment
    where a.segment in (select segment from segment_bits where word > 7)
    union all
    select a.segment, b.segment, 1
    from current_members as a
    inner join current_members as b on a.customer_id = b.customer_id and a.segment <> b.segment
    where b.segment in (select segment from segment_bits where word > 7)
        and a.segment not in (select segment from segment_bits where word > 7)
)

select
    p.segment_a,
    p.segment_b,
    sum(p.people) as customers_in_both,
    max(sa.members) as segment_a_members,
    max(sb.members) as segment_b_members,
    round(cast(sum(p.people) as decimal(18, 6)) / max(sa.members), 4) as share_of_a
from pairs as p
inner join sizes as sa on sa.segment = p.segment_a
inner join sizes as sb on sb.segment = p.segment_b
group by p.segment_a, p.segment_b
order by p.segment_a, p.segment_b

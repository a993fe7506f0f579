-- description: >
--   Who is in each segment now: size, gender and age mix, top city, spend and reachability, for
--   sizing a campaign before launching it.
-- owner: growth@bakery.example
-- grain: [segment]
with current_members as (
    select segment, customer_id
    from marts.segment_membership_history
    where valid_to is null
),

features as (
    select * from core.customer_features
),

member_features as (
    select m.segment, f.*
    from current_members as m
    left join features as f on f.customer_id = m.customer_id
),

-- one pass over the members: each segment's figures, and its members per city (for the top city)
grouped as (
    select
        segment,
        city,
        grouping(city) = 1 as whole_segment,
        count(*) as members,
        round(avg(case when gender = 'female' then 1.0 when gender = 'male' then 0.0 end), 4)
            as share_female,
        round(avg(age), 1) as avg_age,
        round(avg(revenue_365d), 2) as avg_revenue_365d,
        round(avg(orders_365d), 2) as avg_orders_365d,
        round(avg(case when is_email_reachable then 1.0 else 0.0 end), 4) as share_email_reachable,
        round(avg(case when is_sms_reachable then 1.0 else 0.0 end), 4) as share_sms_reachable
    from member_features
    group by grouping sets ((segment), (segment, city))
),

top_cities as (
    select
        segment,
        city,
        -- ties broken by name, so the same members always give the same top city
        row_number() over (partition by segment order by members desc, city) as city_rank
    from grouped
    where not whole_segment and city is not null
)

select
    g.segment,
    g.members,
    g.share_female,
    g.avg_age,
    t.city as top_city,
    g.avg_revenue_365d,
    g.avg_orders_365d,
    g.share_email_reachable,
    g.share_sms_reachable
from grouped as g
left join top_cities as t on t.segment = g.segment and t.city_rank = 1
where g.whole_segment
order by g.segment

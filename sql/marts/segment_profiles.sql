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

top_cities as (
    select
        segment,
        city,
        -- ties broken by name, so the same members always give the same top city
        row_number() over (partition by segment order by count(*) desc, city) as city_rank
    from member_features
    where city is not null
    group by segment, city
)

select
    m.segment,
    count(*) as members,
    round(avg(case when m.gender = 'female' then 1.0 when m.gender = 'male' then 0.0 end), 4)
        as share_female,
    round(avg(m.age), 1) as avg_age,
    max(t.city) as top_city,
    round(avg(m.revenue_365d), 2) as avg_revenue_365d,
    round(avg(m.orders_365d), 2) as avg_orders_365d,
    round(avg(case when m.is_email_reachable then 1.0 else 0.0 end), 4) as share_email_reachable,
    round(avg(case when m.is_sms_reachable then 1.0 else 0.0 end), 4) as share_sms_reachable
from member_features as m
left join top_cities as t on t.segment = m.segment and t.city_rank = 1
group by m.segment
order by m.segment

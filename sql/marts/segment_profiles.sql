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
)

select
    m.segment,
    count(*) as members,
    round(avg(case when f.gender = 'female' then 1.0 when f.gender = 'male' then 0.0 end), 4)
        as share_female,
    round(avg(f.age), 1) as avg_age,
    mode(f.city) as top_city,
    round(avg(f.revenue_365d), 2) as avg_revenue_365d,
    round(avg(f.orders_365d), 2) as avg_orders_365d,
    round(avg(case when f.is_email_reachable then 1.0 else 0.0 end), 4) as share_email_reachable,
    round(avg(case when f.is_sms_reachable then 1.0 else 0.0 end), 4) as share_sms_reachable
from current_members as m
left join features as f on f.customer_id = m.customer_id
group by m.segment
order by m.segment

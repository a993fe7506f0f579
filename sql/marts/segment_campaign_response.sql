-- description: >
--   Response to each campaign by current segment: messages sent, opened and clicked among the
--   segment's members, and the open and click rates (measure response by segment).
-- owner: growth@bakery.example
-- grain: [segment, campaign_id, channel]
with current_members as (
    select segment, customer_id
    from marts.segment_membership_history
    where valid_to is null
),

per_customer as (
    select
        customer_id,
        campaign_id,
        channel,
        bool_or(interaction_type = 'sent') as was_sent,
        bool_or(interaction_type = 'opened') as opened,
        bool_or(interaction_type = 'clicked') as clicked
    from core.interactions
    where campaign_id is not null
    group by customer_id, campaign_id, channel
)

select
    m.segment,
    p.campaign_id,
    p.channel,
    count(*) filter (where p.was_sent) as sent,
    count(*) filter (where p.was_sent and p.opened) as opened,
    count(*) filter (where p.was_sent and p.clicked) as clicked,
    round(count(*) filter (where p.was_sent and p.opened)
        / nullif(count(*) filter (where p.was_sent), 0), 4) as open_rate,
    round(count(*) filter (where p.was_sent and p.clicked)
        / nullif(count(*) filter (where p.was_sent), 0), 4) as click_rate
from current_members as m
inner join per_customer as p on p.customer_id = m.customer_id
group by m.segment, p.campaign_id, p.channel
order by m.segment, p.campaign_id, p.channel

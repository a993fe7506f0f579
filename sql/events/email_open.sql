-- description: Every open of a marketing e-mail, with its campaign (engagement, response by segment).
-- owner: growth@bakery.example
-- tags: [channel, response]
-- grain: [interaction_id]
select
    customer_id,
    occurred_at,
    interaction_id,
    campaign_id
from core.interactions
where channel = 'email'
    and interaction_type = 'opened'
    and customer_id is not null

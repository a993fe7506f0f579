-- description: Every click in a marketing e-mail, with its campaign (response measurement, triggers).
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
    and interaction_type = 'clicked'

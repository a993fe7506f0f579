-- description: >
--   Every click in (email_click) or open of (email_open) a marketing e-mail, with its campaign:
--   response measurement by segment, engagement, triggers.
-- owner: growth@bakery.example
-- tags: [channel, response]
-- grain: [interaction_id]
-- variants:
--   click: {interaction_type: clicked}
--   open: {interaction_type: opened}
select
    customer_id,
    occurred_at,
    interaction_id,
    campaign_id
from core.interactions
where channel = 'email'
    and interaction_type = param('interaction_type')

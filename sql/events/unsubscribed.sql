-- description: >
--   Every unsubscribe, from any channel (e-mail, SMS, push), with the campaign it came from: stop
--   the chains on that channel, feed churn analysis.
-- owner: growth@bakery.example
-- tags: [channel, lifecycle]
-- grain: [interaction_id]
select
    customer_id,
    occurred_at,
    interaction_id,
    channel,
    campaign_id
from core.interactions
where interaction_type = 'unsubscribed'
    and customer_id is not null

-- description: >
--   Channel preference: e-mail is where they respond - more opens and clicks by e-mail than by
--   any other channel in the 365 days up to the as-of day - and they can be e-mailed (valid
--   address, opted in, not unsubscribed since).
-- owner: growth@bakery.example
-- tags: [channel, psychographic]
-- grain: [customer_id]
-- columns:
--   email_responses: Opens and clicks of e-mails in the window.
--   other_responses: The most opens and clicks of any other channel.
with responses as (
    select customer_id, channel, count(*) as responses
    from core.interactions
    where interaction_type in ('opened', 'clicked')
        and customer_id is not null
        and occurred_at >= as_of_end() - interval 365 day
        and occurred_at < as_of_end()
    group by customer_id, channel
),

by_person as (
    select
        customer_id,
        coalesce(sum(responses) filter (where channel = 'email'), 0) as email_responses,
        coalesce(max(responses) filter (where channel <> 'email'), 0) as other_responses
    from responses
    group by customer_id
)

select p.customer_id, p.email_responses, p.other_responses
from by_person as p
join core.customer_features as f on f.customer_id = p.customer_id
where p.email_responses > p.other_responses
    and f.is_email_reachable

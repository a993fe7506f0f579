-- description: >
--   Behavioural (channel engagement): opened 5 or more marketing e-mails in the 6 months up to the
--   end of the as-of day.
-- owner: growth@bakery.example
-- tags: [behavioural, channel]
-- grain: [customer_id]
-- params: {min_opens: 5}
-- columns:
--   emails_opened: E-mail opens in the window (an e-mail opened twice counts twice).
select
    customer_id,
    count(*) as emails_opened,
    max(occurred_at) as last_opened_at
from core.interactions
where channel = 'email'
    and interaction_type = 'opened'
    and customer_id is not null
    and occurred_at >= as_of_end() - interval 6 month
    and occurred_at < as_of_end()
group by customer_id
having count(*) >= param('min_opens')

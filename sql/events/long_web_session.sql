-- description: >
--   Every web or app session of a known person longer than 3 minutes, at its start (a browse
--   without purchase can start an e-mail chain).
-- owner: growth@bakery.example
-- tags: [behavioural, channel]
-- grain: [session_id]
-- params: {min_seconds: 180}
select
    customer_id,
    started_at as occurred_at,
    session_id,
    device,
    duration_seconds,
    page_views
from core.sessions
where customer_id is not null
    and duration_seconds > param('min_seconds')

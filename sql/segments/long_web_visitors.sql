-- description: >
--   Behavioural (web): spent more than 3 minutes in one web or app session, up to the end of the
--   as-of day (anonymous sessions count once they are linked to a person).
-- owner: growth@bakery.example
-- tags: [behavioural, channel]
-- grain: [customer_id]
-- params: {min_seconds: 180}
-- columns:
--   longest_session_seconds: Their longest session.
--   long_sessions: Sessions longer than the threshold.
select
    customer_id,
    max(duration_seconds) as longest_session_seconds,
    count(*) as long_sessions
from core.sessions
where customer_id is not null
    and duration_seconds > param('min_seconds')
    and started_at < as_of_end()
group by customer_id

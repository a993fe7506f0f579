-- description: Web and app sessions re-keyed to the person; anonymous sessions keep a null id.
-- owner: data-eng@bakery.example
-- grain: [session_id]
-- incremental: {from: staging.sessions, via: {core.customer_identity: source_customer_id}}
with sessions as (
    select * from staging.sessions
),

identity as (
    select source_customer_id, customer_id from core.customer_identity
)

select
    s.session_id,
    i.customer_id,
    s.device,
    s.started_at,
    s.duration_seconds,
    s.page_views,
    s.utm_source
from sessions as s
left join identity as i on i.source_customer_id = s.source_customer_id

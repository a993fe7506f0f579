-- description: Marketing interactions re-keyed to the person.
-- owner: data-eng@bakery.example
-- grain: [interaction_id]
-- incremental: {from: staging.interactions, via: {core.customer_identity: source_customer_id}}
with interactions as (
    select * from staging.interactions
),

identity as (
    select source_customer_id, customer_id from core.customer_identity
)

select
    x.interaction_id,
    i.customer_id,
    x.source_customer_id,
    x.channel,
    x.interaction_type,
    x.campaign_id,
    x.occurred_at
from interactions as x
inner join identity as i on i.source_customer_id = x.source_customer_id

-- description: >
--   One row per person with their behaviour up to the end of the as-of day: recency, frequency,
--   monetary value, RFM scores, lifecycle stage, channel preference and consent. The
--   basis of the system segments; recomputed for any as-of date, so a past date gives past features.
-- owner: data-eng@bakery.example
-- grain: [customer_id]
-- tests:
--   - accepted_values: {column: lifecycle_stage, values: [prospect, new, active, at_risk, lapsed]}
--   - expression: {name: rfm_scores_in_range, sql: "rfm_recency between 0 and 5 and rfm_frequency between 0 and 5 and rfm_monetary between 0 and 5"}
-- columns:
--   recency_days: Days from the last completed order to the as-of date (null if none).
--   orders_365d: Completed orders in the 365 days up to the as-of date.
--   revenue_365d: Their total amount, in the business's currency (currency_code()).
--   rfm_recency: 1 (longest ago) to 5 (most recent), quintile by percent rank among buyers of
--     the last 365 days (ties share a score); 0 if none.
--   lifecycle_stage: >
--     prospect (never bought), new (first order within 30 days), lapsed (nothing bought for more
--     than 180 days), active (last order within 60 days, or three of the person's usual gaps),
--     at_risk (in between). Thresholds: [tool.crm.lifecycle].
--   age_band: Age in the usual marketing bands (18-24, 25-34, ... 65+); null without a birth date.
--   preferred_channel: in_store, app, web or delivery, by number of orders.
--   is_email_reachable: Has a valid e-mail and has opted in (and not unsubscribed since).
with customers as (
    select * from core.customers
),

orders as (
    select customer_id, order_id, ordered_at, channel, total_amount
    from core.orders
    where status = 'completed'
        and customer_id is not null
        and ordered_at < as_of_end()
),

items as (
    select customer_id, category, quantity
    from core.order_items
    where status = 'completed'
        and customer_id is not null
        and ordered_at < as_of_end()
),

unsubscribes as (
    select customer_id, channel, max(occurred_at) as unsubscribed_at
    from core.interactions
    where interaction_type = 'unsubscribed'
        and occurred_at < as_of_end()
    group by customer_id, channel
),

order_stats as (
    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders_total,
        count(*) filter (where ordered_at >= as_of_end() - interval 365 day) as orders_365d,
        count(*) filter (where ordered_at >= as_of_end() - interval 90 day) as orders_90d,
        coalesce(sum(total_amount) filter (
            where ordered_at >= as_of_end() - interval 365 day
        ), 0) as revenue_365d,
        sum(total_amount) as revenue_total
    from orders
    group by customer_id
),

category_totals as (
    select customer_id, category, sum(quantity) as quantity_sum
    from items
    group by customer_id, category
),

-- A person's favourite category is the one with the largest total, ties broken by name (the
-- same data always gives the same favourite; a null total or name comes last, as in an ORDER BY).
category_stats as (
    select
        t.customer_id,
        min(t.category) filter (where t.quantity_sum is not distinct from m.top_quantity)
            as favourite_category,
        sum(t.quantity_sum) filter (where t.category = 'croissant') as croissants_bought
    from category_totals as t
    inner join (
        select customer_id, max(quantity_sum) as top_quantity
        from category_totals
        group by customer_id
    ) as m on m.customer_id = t.customer_id
    group by t.customer_id
),

channel_totals as (
    select customer_id, channel, count(*) as orders
    from orders
    where channel is not null
    group by customer_id, channel
),

-- the channel of the most orders, ties broken by name
channel_stats as (
    select t.customer_id, min(t.channel) as preferred_channel
    from channel_totals as t
    inner join (
        select customer_id, max(orders) as top_orders
        from channel_totals
        group by customer_id
    ) as m on m.customer_id = t.customer_id and t.orders = m.top_orders
    group by t.customer_id
),

features as (
    select
        c.customer_id,
        c.gender,
        c.city,
        c.birth_date,
        date_diff('year', c.birth_date, as_of_date())
            - case when strftime(c.birth_date, '%m%d') > strftime(as_of_date(), '%m%d')
                then 1 else 0 end as age,
        c.registered_at,
        o.first_order_at,
        o.last_order_at,
        date_diff('day', cast(timezone(business_timezone(), o.last_order_at) as date), as_of_date())
            as recency_days,
        coalesce(o.orders_total, 0) as orders_total,
        coalesce(o.orders_365d, 0) as orders_365d,
        coalesce(o.orders_90d, 0) as orders_90d,
        coalesce(o.revenue_365d, 0) as revenue_365d,
        coalesce(o.revenue_total, 0) as revenue_total,
        o.revenue_total / nullif(o.orders_total, 0) as avg_order_value,
        ch.preferred_channel,
        cs.favourite_category,
        coalesce(cs.croissants_bought, 0) as croissants_bought,
        case
            when o.orders_total > 1
                then date_diff('day', o.first_order_at, o.last_order_at) / (o.orders_total - 1)
        end as avg_days_between_orders,
        c.email is not null and coalesce(c.email_opt_in, false)
            and (ue.unsubscribed_at is null or ue.unsubscribed_at < c.updated_at)
            as is_email_reachable,
        c.phone is not null and coalesce(c.sms_opt_in, false)
            and (us.unsubscribed_at is null or us.unsubscribed_at < c.updated_at)
            as is_sms_reachable,
        coalesce(c.push_opt_in, false)
            and (up.unsubscribed_at is null or up.unsubscribed_at < c.updated_at)
            as is_push_reachable
    from customers as c
    left join order_stats as o on o.customer_id = c.customer_id
    left join category_stats as cs on cs.customer_id = c.customer_id
    left join channel_stats as ch on ch.customer_id = c.customer_id
    left join unsubscribes as ue on ue.customer_id = c.customer_id and ue.channel = 'email'
    left join unsubscribes as us on us.customer_id = c.customer_id and us.channel = 'sms'
    left join unsubscribes as up on up.customer_id = c.customer_id and up.channel = 'push'
    where c.registered_at is null or c.registered_at < as_of_end()
),

-- quintiles by percent rank among the buyers of the last 365 days, so equal values always get the
-- same score: a value's percent rank is the share of the other buyers ranked before it. Recency
-- (shorter is better: ranked by its negative) and frequency take few values, so they are ranked
-- by value (a few hundred rows, no sort of every person).
value_scores as (
    select
        measure,
        value,
        least(5, 1 + floor(5 * coalesce(
            cast(sum(buyers) over (partition by measure order by value
                                   rows between unbounded preceding and 1 preceding) as double)
            / nullif(sum(buyers) over (partition by measure) - 1, 0), 0))) as score
    from (
        select 'recency' as measure, -recency_days as value, count(*) as buyers
        from features where orders_365d > 0 group by recency_days
        union all
        select 'frequency', orders_365d, count(*)
        from features where orders_365d > 0 group by orders_365d
    ) as counts
),

-- monetary takes more values, but far fewer than there are buyers: ranked by value the same way
monetary_scores as (
    select
        revenue_365d,
        least(5, 1 + floor(5 * coalesce(
            cast(sum(buyers) over (order by revenue_365d
                                   rows between unbounded preceding and 1 preceding) as double)
            / nullif(sum(buyers) over () - 1, 0), 0))) as score
    from (
        select revenue_365d, count(*) as buyers
        from features where orders_365d > 0 group by revenue_365d
    ) as counts
),

scored as (
    select
        f.*,
        coalesce(r.score, 0) as rfm_recency,
        coalesce(q.score, 0) as rfm_frequency,
        coalesce(m.score, 0) as rfm_monetary
    from features as f
    left join value_scores as r
        on r.measure = 'recency' and r.value = -f.recency_days and f.orders_365d > 0
    left join value_scores as q
        on q.measure = 'frequency' and q.value = f.orders_365d and f.orders_365d > 0
    left join monetary_scores as m
        on m.revenue_365d = f.revenue_365d and f.orders_365d > 0
)

select
    *,
    case
        when age < 18 then 'under 18'
        when age < 25 then '18-24'
        when age < 35 then '25-34'
        when age < 45 then '35-44'
        when age < 55 then '45-54'
        when age < 65 then '55-64'
        when age >= 65 then '65+'
    end as age_band,
    case
        when orders_total = 0 then 'prospect'
        when date_diff('day', cast(timezone(business_timezone(), first_order_at) as date),
                       as_of_date()) < lifecycle_new_days() then 'new'
        when recency_days > lifecycle_lapsed_days() then 'lapsed'
        when recency_days <= greatest(lifecycle_active_days(),
                                      3 * coalesce(avg_days_between_orders, 20)) then 'active'
        else 'at_risk'
    end as lifecycle_stage
from scored

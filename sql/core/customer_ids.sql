-- description: >
--   Every customer_id ever issued, current or merged away, mapped to the person's current id
--   (merge chains resolved). Join exported ids, old event rows or trigger logs through it.
-- owner: data-eng@bakery.example
-- grain: [any_customer_id]
-- tests:
--   - relationships: {column: customer_id, to: core.customers, field: customer_id}
with current_ids as (
    select customer_id as any_customer_id, customer_id, false as is_merged
    from core.customers
),

redirected as (
    select from_customer_id as any_customer_id, to_customer_id as customer_id, true as is_merged
    from core.customer_id_redirects
)

select any_customer_id, customer_id, is_merged from current_ids
union all
select any_customer_id, customer_id, is_merged from redirected

-- description: Combined criteria (demographic + geographic) - women aged 25 to 40 living in Moscow.
-- owner: growth@bakery.example
-- tags: [demographic, geographic]
-- grain: [customer_id]
select
    customer_id,
    age,
    city
from core.customer_features
where gender = 'female'
    and city = 'Москва'
    and age between 25 and 40

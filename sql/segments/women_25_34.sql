-- description: >
--   Combined criteria (demographic + geographic): women aged 25 to 34 (the 25-34 age band) living
--   in a city; one table per city.
-- owner: growth@bakery.example
-- tags: [demographic, geographic]
-- grain: [customer_id]
-- variants:
--   moscow: {city: Москва}
--   kazan: {city: Казань}
select
    customer_id,
    age,
    city
from core.customer_features
where gender = 'female'
    and age_band = '25-34'
    and city = param('city')

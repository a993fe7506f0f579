-- description: Members of every segment on every day its history covers (from the SCD2 history).
-- owner: growth@bakery.example
-- grain: [segment, size_date]
with history as (
    select * from marts.segment_membership_history
),

runs as (
    select segment, min(as_of_date) as first_day, max(as_of_date) as last_day
    from meta.segment_runs
    group by segment
),

days as (
    select
        runs.segment,
        cast(day.generate_series as date) as size_date
    from runs,
        generate_series(runs.first_day, runs.last_day, interval 1 day) as day
)

select
    days.segment,
    days.size_date,
    count(history.customer_id) as members,
    count(history.customer_id) filter (where history.valid_from = days.size_date) as entered,
    (
        select count(*) from history as h
        where h.segment = days.segment and h.valid_to = days.size_date
    ) as exited
from days
left join history
    on history.segment = days.segment
    and history.valid_from <= days.size_date
    and (history.valid_to is null or history.valid_to > days.size_date)
group by days.segment, days.size_date
order by days.segment, days.size_date

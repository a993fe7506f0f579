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
),

-- Each history row is a membership from valid_from (inclusive) to valid_to (exclusive, after
-- valid_from), so the members on a day are the rows entered on or before it less those exited on
-- or before it: running sums of the entries and exits per day, one pass over the history however
-- many days it covers (matching every day against every row would cost days x rows).
changes as (
    select segment, size_date, sum(entered) as entered, sum(exited) as exited
    from (
        select segment, valid_from as size_date, count(*) as entered, 0 as exited
        from history
        group by segment, valid_from
        union all
        select segment, valid_to, 0, count(*)
        from history
        where valid_to is not null
        group by segment, valid_to
        union all
        select segment, size_date, 0, 0
        from days
    ) as timeline
    group by segment, size_date
),

sizes as (
    select
        segment,
        size_date,
        cast(sum(entered - exited) over (partition by segment order by size_date) as bigint)
            as members,
        cast(entered as bigint) as entered,
        cast(exited as bigint) as exited
    from changes
)

select sizes.segment, sizes.size_date, sizes.members, sizes.entered, sizes.exited
from sizes
semi join days
    on days.segment = sizes.segment
    and days.size_date = sizes.size_date
order by sizes.segment, sizes.size_date

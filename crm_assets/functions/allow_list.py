"""The SQL functions a definition may call: an allow-list, not a deny-list.

A definition may call only the functions named in :data:`ALLOWED_FUNCTIONS` (pure scalar, aggregate
and window functions of DuckDB) plus the project's own (:data:`PROJECT_FUNCTIONS`), and only the
table functions in :data:`ALLOWED_TABLE_FUNCTIONS`. Anything that reads files, the environment or
other databases is simply not on the list, so a new DuckDB release that adds such a function does
not open a hole.
"""

from __future__ import annotations

from crm_assets.clv.functions import CLV_FUNCTIONS
from crm_assets.functions.contacts import PYTHON_FUNCTIONS
from crm_assets.functions.macros import SQL_MACROS

RUN_MACROS: frozenset[str] = frozenset({"as_of_date", "as_of_end", "business_timezone",
                                       "earliest_plausible_date", "latest_plausible",
                                       "currency_code",
                                       "currency_symbol", "lifecycle_new_days",
                                       "lifecycle_active_days", "lifecycle_lapsed_days"})
"""Project functions that are constants of a run or of the project's configuration (the as-of
date, the business time zone, the earliest plausible date of an event)."""

CLEANING_FUNCTIONS: tuple[str, ...] = PYTHON_FUNCTIONS + SQL_MACROS
"""Every public cleaning function (UDFs and macros): staging SQL calls them."""

PROJECT_FUNCTIONS: frozenset[str] = RUN_MACROS | frozenset(CLEANING_FUNCTIONS) | frozenset(
    CLV_FUNCTIONS)  # the scores of the predictive models (crm_assets.clv.functions)

ALLOWED_TABLE_FUNCTIONS: frozenset[str] = frozenset({"range", "generate_series", "unnest"})

_ALLOWED = """
abs acos asin atan atan2 cbrt ceil ceiling cos cot degrees exp floor gcd greatest lcm least ln log
log10 log2 mod pi pow power radians round sign sin sqrt tan trunc even factorial isnan isinf
isfinite count count_star sum avg mean min max first last any_value arg_max arg_min argmax argmin
max_by min_by bool_and bool_or string_agg group_concat listagg list array_agg median mode quantile
quantile_cont quantile_disc approx_count_distinct approx_quantile stddev stddev_pop stddev_samp
variance var_pop var_samp corr covar_pop covar_samp entropy kurtosis skewness product histogram
bit_and bit_or bit_xor count_if countif sumkahan fsum favg regr_slope regr_intercept row_number
rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value coalesce
nullif ifnull if iif concat concat_ws lower upper lcase ucase length len char_length
character_length strlen trim ltrim rtrim lpad rpad left right substr substring substring_grapheme
replace reverse repeat position strpos instr starts_with ends_with prefix suffix contains
split_part string_split str_split string_split_regex regexp_matches regexp_replace regexp_extract
regexp_extract_all regexp_full_match regexp_split_to_array like_escape ilike_escape translate
strip_accents unicode ascii chr format printf md5 sha256 hash initcap nfc_normalize levenshtein
damerau_levenshtein jaro_similarity jaro_winkler_similarity jaccard hamming mismatches editdist3
array_to_string list_aggregate to_base64 from_base64 url_encode url_decode date_trunc datetrunc
date_part datepart date_diff datediff date_sub datesub date_add extract year month day hour minute
second millisecond microsecond week weekofyear weekday dayofweek isodow dayofyear dayofmonth
quarter yearweek isoyear era epoch epoch_ms epoch_us epoch_ns make_date make_time make_timestamp
make_timestamptz strftime strptime try_strptime to_timestamp last_day monthname dayname age to_days
to_hours to_minutes to_seconds to_months to_years to_weeks to_microseconds to_milliseconds timezone
time_bucket list_value list_pack list_contains list_has list_position
list_extract list_element array_length list_sort list_reverse_sort list_distinct list_unique
list_filter list_transform list_apply list_reduce list_slice list_concat list_cat array_concat
list_sum list_min list_max list_avg list_count list_first list_last array_contains array_has
array_position array_extract flatten list_has_any list_has_all array_has_any array_has_all len
cardinality struct_pack struct_extract row map map_extract map_keys map_values element_at
json_extract json_extract_string json_extract_path json_extract_path_text json_value json_object
json_array json_type json_valid to_json json_keys json_array_length json_contains typeof try_cast
cast hash
""".split()

CLOCK = ("reads the clock: a definition must give the same rows for the same as-of date (a "
         "rebuild of a past day gives that day's answer); use as_of_date() (the as-of day) or "
         "as_of_end() (the end of that day, an instant)")
CHANCE = ("differs on every run: a definition must give the same rows for the same inputs; for "
          "a stable sample, use hash() of the id with a seed")
NOT_DETERMINISTIC: dict[str, str] = {
    **dict.fromkeys(["current_date", "today", "now", "current_timestamp",
                     "get_current_timestamp", "transaction_timestamp", "current_time",
                     "get_current_time", "localtime", "localtimestamp", "current_localtimestamp",
                     "statement_timestamp", "clock_timestamp"], CLOCK),
    **dict.fromkeys(["random", "setseed", "uuid", "gen_random_uuid", "uuidv4", "uuidv7"],
                    CHANCE),
}
"""Functions (and the keywords ``current_date``, ``current_timestamp``...) refused with why."""

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(_ALLOWED) | {"unnest"} | PROJECT_FUNCTIONS
"""Scalar, aggregate and window functions a definition may call (``unnest`` of a list too)."""

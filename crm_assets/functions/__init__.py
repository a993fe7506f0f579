"""The SQL functions of the project: what a definition may call, and the project's own ones.

* :mod:`~crm_assets.functions.allow_list`: the functions and table functions a definition may call.
* :mod:`~crm_assets.functions.contacts`: e-mail and phone cleaning by libraries, as Arrow UDFs.
* :mod:`~crm_assets.functions.macros`: the other cleaning rules, as SQL macros.
* :mod:`~crm_assets.functions.registry`: registering all of them on a connection, and the run's
  constants (``as_of_date()``, ``as_of_end()``, ``business_timezone()``).
"""

from crm_assets.functions.registry import register_functions, set_as_of_date, set_business_timezone

__all__ = ["register_functions", "set_as_of_date", "set_business_timezone"]

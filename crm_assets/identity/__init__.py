"""Identity resolution: which source customer records are one person, under a stable id.

* :mod:`~crm_assets.identity.resolve`: the matching rule and :func:`resolve_identity`.
* :mod:`~crm_assets.identity.report`: precision and recall against a truth file.
"""

from crm_assets.identity.report import dedupe_report
from crm_assets.identity.resolve import resolve_customer_id, resolve_identity

__all__ = ["dedupe_report", "resolve_customer_id", "resolve_identity"]

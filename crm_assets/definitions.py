"""The project's Dagster entry point: what ``dagster dev`` and ``workspace.yaml`` load.

Everything is gathered by :func:`crm_assets.defs.definitions.build_definitions`; tests call it
with their own settings.
"""

import warnings

import dagster as dg

from crm_assets.defs.definitions import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    """Settings from ``pyproject.toml`` and the environment, read when Dagster loads the code."""
    with warnings.catch_warnings():  # the beta/preview parameters the project uses on purpose
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return build_definitions()

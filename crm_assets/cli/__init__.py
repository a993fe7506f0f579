"""``crm``: the project's command line. Only this package prints and chooses exit codes.

* :mod:`~crm_assets.cli.main`: the parser and :func:`main`.
* :mod:`~crm_assets.cli.instance`: the Dagster instance every command uses, and ``crm dev``.
* :mod:`~crm_assets.cli.run`: commands that launch runs (``demo``, ``build``, ``segment-history``,
  ``plan``, ``generate``).
* :mod:`~crm_assets.cli.inspect`: commands that read (``validate``, ``summary``, ``customer``,
  ``dedupe-report``, ``versions``, ``lineage``).
* :mod:`~crm_assets.cli.campaigns`: ``audience``.
* :mod:`~crm_assets.cli.engines`: ``compile`` and ``spark``.
"""

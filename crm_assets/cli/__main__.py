"""``python -m crm_assets.cli``: the same as ``crm``."""

from crm_assets.cli.main import main

raise SystemExit(main())

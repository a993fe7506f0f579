"""The two small tables written straight from the reference lists: stores and products."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crm_assets.demo.reference import CITIES, PRODUCTS
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import q


def write_stores(run: Run, path: Path) -> int:
    """The run's stores (``S001``...), the first opened ~6 years before ``start``."""
    rows = []
    for i, (city, name) in enumerate(run.stores):
        opened = run.start - timedelta(days=2200 - 85 * i)
        rows.append(
            f"({q(f'S{i + 1:03d}')}, {q(name)}, {q(CITIES[city][0])}, "
            f"{q(CITIES[city][1])}, DATE {q(opened.isoformat())})"
        )
    return run.copy_values_to_csv("stores", rows, "store_id", path)


def write_products(run: Run, path: Path) -> int:
    """The whole catalogue (``P001``...), inactive products included."""
    rows = [
        f"({q(f'P{i + 1:03d}')}, {q(name)}, {q(cat)}, {q(f'{price / 100:.2f}')}, "
        f"{q('true' if active else 'false')})"
        for i, (name, cat, price, active, _) in enumerate(PRODUCTS)
    ]
    return run.copy_values_to_csv("products", rows, "product_id", path)

"""What is new in the landing folder, without opening the warehouse (a writer may hold it).

The ``landing`` sensor keeps in its cursor ``(relative path, size, mtime, sha256)`` per file
present. A file whose size and mtime are unchanged is not even read again; a new or changed file is
hashed, and requested only if those bytes (for that table) were not requested before, so a renamed
or re-touched copy triggers nothing. A file younger than
:data:`~crm_assets.ingest.files.LANDING_SETTLE_SECONDS` may still be being copied in and waits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from crm_assets.ingest.files import LANDING_SETTLE_SECONDS, file_sha256, folder_files

CURSOR_VERSION = 1


def _read_cursor(cursor: str | None) -> dict[str, list]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return {}
    return dict(data.get("files", {}))


def scan_landing(landing_dir: Path | None, cursor: str | None, now: float | None = None
                 ) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """What to request: new bytes per table as ``[(relative path, sha256)]``, and the new cursor.

    Pure file-system work (no warehouse): stat every candidate file, hash only new or changed
    ones. The cursor keeps only files still present, so it stays as small as the folder.
    """
    now = time.time() if now is None else now
    previous = _read_cursor(cursor)
    requested_before = {(entry[3], entry[2]) for entry in previous.values()}  # (table, sha)
    files: dict[str, list] = {}
    new: dict[str, list[tuple[str, str]]] = {}
    by_table = folder_files(landing_dir)
    for table, relatives in sorted(by_table.items()):
        for rel in relatives:
            try:
                stat = (landing_dir / rel).stat()
            except FileNotFoundError:  # moved away since the listing
                continue
            if now - stat.st_mtime < LANDING_SETTLE_SECONDS:
                if rel in previous:
                    files[rel] = previous[rel]
                continue  # still being written, perhaps: next tick
            entry = previous.get(rel)
            if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
                files[rel] = entry
                continue
            sha = file_sha256(landing_dir / rel)
            files[rel] = [stat.st_size, stat.st_mtime_ns, sha, table]
            if (table, sha) not in requested_before:
                requested_before.add((table, sha))
                new.setdefault(table, []).append((rel, sha))
    return new, json.dumps({"v": CURSOR_VERSION, "files": files}, sort_keys=True)

"""Source files into the append-only ``raw`` layer: the input contract and how files are read.

* :mod:`~crm_assets.ingest.contracts`: the source tables, their columns, what is required.
* :mod:`~crm_assets.ingest.files`: which files feed which table.
* :mod:`~crm_assets.ingest.encoding`: encodings and separators, or why a file is refused.
* :mod:`~crm_assets.ingest.reader`: one file into text columns, malformed records kept.
* :mod:`~crm_assets.ingest.loader`: appending each file once, by its sha256.
* :mod:`~crm_assets.ingest.landing`: what is new in the landing folder (for the sensor).
* :mod:`~crm_assets.ingest.freshness`: how old each table's newest file is.
"""

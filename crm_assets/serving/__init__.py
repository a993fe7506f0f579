"""What leaves the warehouse: the BI snapshot, campaign audiences and trigger exports.

* :mod:`~crm_assets.serving.snapshot`: the snapshot BI tools read (Parquet behind a views file).
* :mod:`~crm_assets.serving.audiences`: a campaign's audience with a stable target/holdout split.
* :mod:`~crm_assets.serving.exports`: one CSV a day per trigger event, for the e-mail tool.
"""

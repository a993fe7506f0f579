"""``erase_person``: the job behind ``crm erase`` (:mod:`crm_assets.warehouse.erasure`).

Its config names the person by a warehouse customer_id or by a keyed hash, never by an e-mail or
phone, so Dagster's run records hold no personal data. After the warehouse's transaction, both
snapshots are published again whole and the trigger exports rewritten without anyone ever erased:
so ``crm erase`` run again after a run killed between the two completes the first.
"""

import dagster as dg

from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.defs.serving import CONTACTS_KEY, SERVING_KEY
from crm_assets.serving.exports import scrub_exports
from crm_assets.serving.snapshot import BI, CONTACTS, publish
from crm_assets.settings import Settings
from crm_assets.warehouse.erasure import ErasureError, erase_person
from crm_assets.warehouse.state import latest_build, set_watermark
from crm_assets.warehouse.suppression import read_key
from crm_assets.warehouse.tables import BUILT_VERSIONS

ERASE_JOB = "erase_person"


class ErasureConfig(dg.Config):
    """Who to erase: ``selector`` is customer (``value`` a customer_id) or source_id, email or
    phone (``value`` the keyed hash ``crm erase`` computed)."""

    selector: str
    value: str
    reason: str | None = None


def build_erasure_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(name="erase", pool=POOL)
    def _erase(context: dg.OpExecutionContext, config: ErasureConfig,
               warehouse: Warehouse) -> None:
        key = read_key(settings.suppression_key_path, create=True)
        with warehouse.connect() as con:
            try:
                done = erase_person(con, key, config.selector, config.value, config.reason,
                                    context.run.run_id)
            except ErasureError as err:
                raise dg.Failure(str(err)) from err
            built = latest_build(con)
            # every id ever erased: a run killed after the commit is completed by the next one
            erased = [r[0] for r in con.execute(
                "SELECT DISTINCT unnest(customer_ids) FROM meta.erasures").fetchall()]
            for asset, tier, folder in ((SERVING_KEY, BI, settings.serving_path),
                                        (CONTACTS_KEY, CONTACTS, settings.contacts_path)):
                # every table fingerprinted again; the snapshots holding the person expire
                publish(con, folder, since=None, tier=tier, expire_previous=True)
                set_watermark(con, asset.to_user_string(), BUILT_VERSIONS.name, built)
        files = scrub_exports(settings.contacts_path, erased)
        context.log.info(
            f"erasure {done.erasure_id}: {len(done.customer_ids)} warehouse id(s), "
            f"{done.source_records} source record(s), "
            f"{sum(done.rows_deleted.values())} row(s) deleted in {len(done.rows_deleted)} "
            f"table(s), {files} export file(s) rewritten" if done.found else
            f"erasure {done.erasure_id}: nobody found; the contact is suppressed for later loads")

    @dg.job(name=ERASE_JOB, executor_def=dg.in_process_executor,
            description="Erase one person from every layer, snapshot and export, and suppress "
                        "what they were known by (crm erase).")
    def _job():
        _erase()

    return _job

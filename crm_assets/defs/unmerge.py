"""``unmerge_person``: the job behind ``crm unmerge`` (:mod:`crm_assets.warehouse.unmerge`)."""

import dagster as dg

from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.warehouse.unmerge import UnmergeError, unmerge

UNMERGE_JOB = "unmerge_person"


class UnmergeConfig(dg.Config):
    """The person (a customer_id) and the source record ids to split off into a new person."""

    customer_id: int
    records: list[str]
    reason: str | None = None


def build_unmerge_job() -> dg.JobDefinition:
    @dg.op(name="unmerge", pool=POOL)
    def _unmerge(context: dg.OpExecutionContext, config: UnmergeConfig,
                 warehouse: Warehouse) -> None:
        with warehouse.connect() as con:
            try:
                person, new_id = unmerge(con, config.customer_id, config.records, config.reason,
                                         context.run.run_id)
            except UnmergeError as err:
                raise dg.Failure(str(err)) from err
        context.log.info(f"person {person}: {len(config.records)} record(s) split off as "
                         f"person {new_id}; the next run re-keys what depends on them")

    @dg.job(name=UNMERGE_JOB, executor_def=dg.in_process_executor,
            description="Split named source records off a person into a new one, and keep the "
                        "decision (crm unmerge).")
    def _job():
        _unmerge()

    return _job

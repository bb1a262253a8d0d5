"""Run records: typed, kept in the ledger and the schedule's history, with the flags they were
queued with."""

from __future__ import annotations

from datetime import datetime

import redis

from jobs.digest import pipeline
from jobs.digest.ledger import Ledger, RunRecord, history
from jobs.queue import Run
from jobs.scheduling.slots import Schedule

WEEKLY = Schedule(name="ledger-weekly", cron="0 9 * * MON", channels=("#eng",))


def test_a_manual_run_on_a_cron_instant_is_recorded_as_manual(redis_client: redis.Redis) -> None:
    on_the_cron = datetime(2026, 11, 23, 9, tzinfo=WEEKLY.zone)
    assert WEEKLY.is_slot(on_the_cron)
    record = pipeline.give_up(redis_client, Run(WEEKLY.name, on_the_cron, manual=True), "boom")
    assert record.manual and record.run == f"ledger-weekly@{on_the_cron.isoformat()}"
    assert history(redis_client, WEEKLY.name)[0] == record
    assert Ledger(redis_client, record.run).record() == record


def test_a_record_round_trips_and_shows_no_addresses_outside() -> None:
    record = RunRecord(
        "s@t",
        "s",
        "t",
        False,
        "partial",
        1.0,
        2.0,
        error="one failed",
        window=("a", "b"),
        totals={"messages": 3},
        destinations={"email:x@example.com": "sent"},
    )
    assert RunRecord.from_dict(record.as_dict()) == record
    assert "destinations" not in record.outcome() and "totals" not in record.outcome()
    assert record.outcome()["error"] == "one failed"
    assert not record.succeeded and RunRecord("r", "s", "t", True, "skipped", 0, 0).succeeded

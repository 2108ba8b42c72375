"""The fair claim (service.queue.fair_claim), on the database itself: the project running
fewest first, ties to the one whose latest start is oldest, a project's running quota
respected, locked rows skipped, and concurrent claimers never over a quota."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.core.states import QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Job, Project, utcnow
from service.queue.claims import claim_job
from tests.conftest import POSTGRES_URL
from tests.service.factories import add_dataset, add_job


def set_quota(database, project: str, **quotas: int | None) -> None:
    with database.writes() as session, session.begin():
        row = session.get(Project, project) or Project(name=project)
        for name, value in quotas.items():
            setattr(row, name, value)
        session.add(row)


def claimed_project(database, settings) -> str | None:
    claim = claim_job(database=database, worker_id="w", settings=settings)
    if claim is None:
        return None
    with database.reads() as session:
        return session.scalar(select(Job.project).where(Job.id == claim.job_id))


def test_the_project_running_fewest_goes_first_though_its_job_is_newest(database, settings):
    dataset_id = add_dataset(database)
    for age in (50, 40, 30):
        add_job(database, dataset_id, project="a", age_seconds=age)
    add_job(database, dataset_id, project="a", status=RUNNING, started_at=utcnow())
    add_job(database, dataset_id, project="b", age_seconds=1)
    assert claimed_project(database, settings) == "b"
    # Now both run one: the tie goes to a, whose latest start is the older.
    assert claimed_project(database, settings) == "a"


def test_a_tie_goes_to_the_project_that_never_started_a_job(database, settings):
    dataset_id = add_dataset(database)
    before = utcnow() - timedelta(seconds=5)
    add_job(database, dataset_id, project="a", status=SUCCEEDED, started_at=before)
    for age in (50, 40):
        add_job(database, dataset_id, project="a", age_seconds=age)
    add_job(database, dataset_id, project="b", age_seconds=1)
    assert claimed_project(database, settings) == "b"


def test_a_tie_goes_to_the_older_latest_start(database, settings):
    dataset_id = add_dataset(database)
    now = utcnow()
    add_job(database, dataset_id, project="a", status=SUCCEEDED, started_at=now)
    add_job(database, dataset_id, project="b", status=SUCCEEDED, started_at=now - timedelta(1))
    add_job(database, dataset_id, project="a", age_seconds=60)
    add_job(database, dataset_id, project="b", age_seconds=1)
    assert claimed_project(database, settings) == "b"


def test_within_a_project_the_oldest_job_goes_first(database, settings):
    dataset_id = add_dataset(database)
    newer = add_job(database, dataset_id, project="a", age_seconds=1)
    older = add_job(database, dataset_id, project="a", age_seconds=9)
    first = claim_job(database=database, worker_id="w", settings=settings)
    second = claim_job(database=database, worker_id="w", settings=settings)
    assert (first.job_id, second.job_id) == (older, newer)


def test_a_project_at_its_running_quota_is_passed_over(database, settings):
    dataset_id = add_dataset(database)
    set_quota(database, "a", max_running_jobs=1)
    add_job(database, dataset_id, project="a", status=RUNNING, started_at=utcnow())
    add_job(database, dataset_id, project="a", age_seconds=60)
    assert claimed_project(database, settings) is None  # a's job waits; nothing else queued
    add_job(database, dataset_id, project="b")
    assert claimed_project(database, settings) == "b"
    assert claimed_project(database, settings) is None


def test_the_service_default_applies_to_projects_without_a_quota(database, settings):
    dataset_id = add_dataset(database)
    limited = settings.model_copy(update={"project_max_running_jobs": 1})
    set_quota(database, "b", max_running_jobs=2)  # its own quota wins over the default
    for project in ("a", "a", "b", "b", "b"):
        add_job(database, dataset_id, project=project)
    claimed = [claimed_project(database, limited) for _ in range(5)]
    assert sorted(p for p in claimed if p) == ["a", "b", "b"]


def test_a_running_quota_of_zero_holds_the_project(database, settings):
    dataset_id = add_dataset(database)
    set_quota(database, "a", max_running_jobs=0)
    add_job(database, dataset_id, project="a")
    assert claimed_project(database, settings) is None


@pytest.mark.skipif(not POSTGRES_URL, reason="SKIP LOCKED is PostgreSQL's")
def test_when_the_chosen_projects_rows_are_locked_the_next_project_is_tried(database, settings):
    if database.is_sqlite:
        pytest.skip("SQLite claimers take turns: no row is ever locked by another")
    dataset_id = add_dataset(database)
    locked = add_job(database, dataset_id, project="a", age_seconds=60)
    add_job(database, dataset_id, project="b", status=SUCCEEDED, started_at=utcnow())
    add_job(database, dataset_id, project="b")
    with database.writes() as other, other.begin():  # another claimer holds a's only row
        other.execute(select(Job.id).where(Job.id == locked).with_for_update())
        assert claimed_project(database, settings) == "b"


def test_concurrent_claimers_never_pass_a_running_quota(database, settings):
    dataset_id = add_dataset(database)
    set_quota(database, "a", max_running_jobs=2)
    for _ in range(8):
        add_job(database, dataset_id, project="a")
    start = threading.Barrier(6)
    claimed: list[str | None] = []

    def claim(worker: str) -> None:
        start.wait()
        for _ in range(3):
            result = claim_job(database=database, worker_id=worker, settings=settings)
            claimed.append(result.job_id if result else None)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with database.reads() as session:
        statuses = session.scalars(select(Job.status).where(Job.project == "a")).all()
    assert sorted(statuses).count(RUNNING) == 2
    assert sorted(statuses).count(QUEUED) == 6
    assert len([c for c in claimed if c]) == 2

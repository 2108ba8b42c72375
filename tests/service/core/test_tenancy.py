"""Projects at the session level: inside ``project_scope`` every ORM statement sees only the
project's rows, SELECT, UPDATE and DELETE alike; new rows take the project; outside a
scope (workers) nothing is filtered. The routes rely on this alone, so it is tested here
on its own; tests/service/test_authz_matrix.py drives it through every route."""

from sqlalchemy import delete, func, select, update

from service.core.api_keys import create_key
from service.core.roles import Role
from service.core.tables import Dataset, Job, Model, RegisteredModel
from service.core.tenancy import DEFAULT_PROJECT, current_project, project_scope
from tests.service.factories import add_dataset, add_job, add_model, assert_problem


def test_a_scope_sees_its_own_rows_only(database):
    with project_scope("a"):
        mine = add_dataset(database, seed=1)
    with project_scope("b"):
        theirs = add_dataset(database, seed=2)
    with project_scope("a"), database.reads() as session:
        assert session.scalars(select(Dataset.id)).all() == [mine]
        assert session.get(Dataset, theirs) is None
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1
        # Through a join, the other side is filtered too.
        joined = select(Job.id).join(Dataset, Job.dataset_id == Dataset.id)
        assert session.scalars(joined).all() == []
    with database.reads() as session:  # no scope: a worker's view, every project
        assert set(session.scalars(select(Dataset.id))) == {mine, theirs}
        assert session.get(Dataset, theirs).project == "b"


def test_updates_and_deletes_of_another_projects_rows_touch_nothing(database):
    with project_scope("b"):
        theirs = add_dataset(database)
        job = add_job(database, theirs)
    with project_scope("a"), database.writes() as session, session.begin():
        renamed = session.execute(update(Dataset).values(name="taken").where(Dataset.id == theirs))
        removed = session.execute(delete(Job).where(Job.id == job))
        assert (renamed.rowcount, removed.rowcount) == (0, 0)
    with database.reads() as session:
        assert session.get(Dataset, theirs).name != "taken"
        assert session.get(Job, job) is not None


def test_new_rows_take_the_scope_and_workers_name_theirs(database):
    assert current_project() is None
    with project_scope("a"):
        model_id = add_model(database)  # the model row is made as a worker makes it
    with database.reads() as session:
        model = session.get(Model, model_id)
        job = session.get(Job, model.job_id)
        assert (model.project, job.project) == ("a", "a")
    assert add_dataset(database, seed=3)  # outside any scope: the default project
    with project_scope(DEFAULT_PROJECT), database.reads() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1


def test_two_projects_may_register_the_same_name(database, client):
    with database.writes() as session, session.begin():
        keys = {p: create_key(session, project=p, role=Role.trainer)[0] for p in ("a", "b")}
    for project, key in keys.items():
        response = client.post(
            "/v1/registered-models", json={"name": "churn"}, headers={"X-API-Key": key}
        )
        assert response.status_code == 201, (project, response.text)
    with database.reads() as session:
        rows = session.execute(select(RegisteredModel.project, RegisteredModel.name)).all()
    assert sorted(rows) == [("a", "churn"), ("b", "churn")]
    # And one project's name is another's missing one, answered alike.
    a_key = {"X-API-Key": keys["a"]}
    missing = assert_problem(client.get("/v1/registered-models/nothing", headers=a_key), 404)
    assert set(missing) == {"type", "title", "status", "detail"}


def test_a_key_of_another_project_cannot_read_a_dataset_by_id(database, client):
    with database.writes() as session, session.begin():
        key_a = create_key(session, project="a", role=Role.reader)[0]
        key_b = create_key(session, project="b", role=Role.reader)[0]
    with project_scope("b"):
        theirs = add_dataset(database)
    unknown = "f" * 32
    own = client.get(f"/v1/datasets/{theirs}", headers={"X-API-Key": key_b})
    assert own.status_code == 200
    other = assert_problem(client.get(f"/v1/datasets/{theirs}", headers={"X-API-Key": key_a}), 404)
    missing = assert_problem(
        client.get(f"/v1/datasets/{unknown}", headers={"X-API-Key": key_a}), 404
    )
    assert other["detail"].replace(theirs, unknown) == missing["detail"]
    listed = client.get("/v1/datasets", headers={"X-API-Key": key_a}).json()
    assert listed["data"] == []
